// Wills of the clients of a node that dies (docs/CLUSTER.md §4): clients with
// a will are connected to node B of three; B is killed with kill -9, so it
// publishes nothing; a live node publishes each will once Aedes sees B's
// heartbeat stop (2 s interval, dead after 3 missed) at its next will check
// (every 8 s): within 14 s of the kill, to a subscriber on node A; once, or
// once per live node whose check ran at the same moment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { gatewayNode, type GatewayNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'

/** docs/CLUSTER.md: 6 s without a heartbeat, plus up to 8 s to the next will check. */
const WILL_BOUND_MS = 14_000
/** Room for a loaded 2-core machine, where timers and Redis round trips run late. */
const SLACK_MS = 8_000

describe.skipIf(!redisAvailable())('the wills of a node killed with kill -9', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  let c: GatewayNode
  const clients: MqttClient[] = []

  beforeAll(async () => {
    redis = await startRedis()
    const nodes = await Promise.all([0, 1, 2].map(async () => await gatewayNode({ redisUrl: redis.url })))
    ;[a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode]
  }, 60_000)
  afterAll(async () => {
    for (const client of clients) client.end(true)
    for (const n of [a, b, c]) await n?.kill()
    await redis?.close()
  })

  it('are published by a live node within the documented bound, at most once per live node', async () => {
    const sub = await connectClient(a.mqttUrl)
    clients.push(sub)
    const got: Array<{ payload: string, at: number }> = []
    sub.on('message', (_topic, payload) => got.push({ payload: payload.toString(), at: Date.now() }))
    await subscribe(sub, 'wills/#', 1)
    const devices = [0, 1, 2, 3, 4].map(i => `will-dev-${process.pid}-${i}`)
    for (const id of devices) {
      // The will is stored before the CONNACK (Aedes's connect handler), so it is in Redis now.
      clients.push(await connectClient(b.mqttUrl, { clientId: id, will: { topic: `wills/${id}`, payload: Buffer.from(`${id} gone`), qos: 1, retain: false } }))
    }
    const killedAt = Date.now()
    await b.kill()
    await waitFor(() => devices.every(id => got.some(m => m.payload === `${id} gone`)),
      { timeoutMs: WILL_BOUND_MS + SLACK_MS, intervalMs: 50, what: 'every will of the killed node' })
    const latest = Math.max(...got.map(m => m.at)) - killedAt
    expect(latest).toBeLessThanOrEqual(WILL_BOUND_MS + SLACK_MS)
    // Only the killed node's wills, none published while it lived.
    expect(got.every(m => m.at >= killedAt)).toBe(true)
    expect(new Set(got.map(m => m.payload))).toEqual(new Set(devices.map(id => `${id} gone`)))
    // Once, or once per live node whose will check ran at the same moment (Aedes takes no lock; docs/CLUSTER.md).
    for (const id of devices) expect(got.filter(m => m.payload === `${id} gone`).length).toBeLessThanOrEqual(2)
    // The live nodes still serve each other.
    expect(c.proc.exited).toBeUndefined()
  }, 60_000)
})
