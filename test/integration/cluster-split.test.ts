// A network split between one node and Redis (docs/CLUSTER.md §4, "a split:
// node ↔ Redis"), made with a TCP proxy between node A and Redis that resets
// and refuses connections: A reports Redis on /readyz and keeps serving its
// own responder; node B, still on Redis, forgets A's responder within the node
// TTL (3 s) and answers 404 for it; when the link heals, each reaches the
// other's responder again, with no restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { callService, gatewayNode, responder, type GatewayNode } from '../helpers/nodes.js'
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'

const status = async (node: GatewayNode, service: string): Promise<number> => (await callService(node, service, 'hi', 2)).status
const ready = async (node: GatewayNode): Promise<number> => (await fetch(`${node.httpUrl}/readyz`)).status

describe.skipIf(!redisAvailable())('a node cut off from Redis while the others are not', () => {
  let redis: TestRedis
  let proxy: TcpProxy
  let a: GatewayNode
  let b: GatewayNode
  const clients: MqttClient[] = []

  beforeAll(async () => {
    redis = await startRedis()
    proxy = await tcpProxy(redis.port)
    a = await gatewayNode({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
    b = await gatewayNode({ redisUrl: redis.url })
    clients.push((await responder(a.mqttUrl, 'ona')).client, (await responder(b.mqttUrl, 'onb')).client)
    for (const [node, service] of [[a, 'onb'], [b, 'ona']] as const) {
      await waitFor(async () => await status(node, service) === 200, { timeoutMs: 10_000, what: `${service} to answer across nodes` })
    }
  }, 60_000)
  afterAll(async () => {
    for (const c of clients) c.end(true)
    await a?.kill()
    await b?.kill()
    await proxy?.close()
    await redis?.close()
  })

  it('isolates that node, forgets its responders elsewhere within the TTL, and heals', async () => {
    await proxy.cut()
    const cutAt = Date.now()
    await waitFor(async () => await ready(a) === 503, { timeoutMs: 10_000, what: 'A to report Redis gone' })
    expect(await ready(b)).toBe(200)
    // B stops counting A's responder after NODE_TTL_MS (3 s), with room for a loaded machine.
    await waitFor(async () => await status(b, 'ona') === 404, { timeoutMs: 10_000, intervalMs: 100, what: 'B to answer 404 for A\'s responder' })
    expect(Date.now() - cutAt).toBeLessThan(10_000)
    // Each side still serves its own responder; A counts only its own while cut off.
    expect(await status(a, 'ona')).toBe(200)
    expect(await status(b, 'onb')).toBe(200)
    expect(await status(a, 'onb')).toBe(404)

    await proxy.heal()
    await waitFor(async () => await ready(a) === 200, { timeoutMs: 30_000, intervalMs: 100, what: 'A to reconnect to Redis' })
    await waitFor(async () => await status(b, 'ona') === 200 && await status(a, 'onb') === 200,
      { timeoutMs: 20_000, intervalMs: 100, what: 'each node to reach the other\'s responder again' })
    expect(await (await callService(b, 'ona', 'healed')).text()).toBe('ona:healed')
  }, 90_000)
})
