// Redis killed under a two-node cluster (docs/CLUSTER.md §4): /readyz says so,
// each node keeps serving its own clients (local calls, local pub/sub at QoS 0
// and 1; a QoS 1 message a persistent session must store is refused),
// services served only by the other node get 404 rather than a timeout, and
// everything comes back once Redis does, with no restart of the gateways.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { callService, gatewayNode, responder, type GatewayNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'

async function readyz (node: GatewayNode): Promise<{ status: number, checks: Record<string, string> }> {
  const res = await fetch(`${node.httpUrl}/readyz`)
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, string> }).checks }
}

describe('a cluster whose Redis goes away and comes back', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  const clients: MqttClient[] = []

  beforeAll(async () => {
    redis = await startRedis()
    a = await gatewayNode({ redisUrl: redis.url })
    b = await gatewayNode({ redisUrl: redis.url })
    clients.push((await responder(a.mqttUrl, 'local')).client, (await responder(b.mqttUrl, 'remote')).client)
    for (const service of ['local', 'remote']) {
      await waitFor(async () => (await callService(a, service)).status === 200, { timeoutMs: 10_000, what: `${service} to answer on A` })
    }
  }, 60_000)
  afterAll(async () => {
    for (const c of clients) c.end(true)
    await a?.kill()
    await b?.kill()
    await redis?.close()
  })

  it('reports Redis on /readyz, serves its own clients, answers 404 for the others\' services, and recovers', async () => {
    expect(await readyz(a)).toEqual({ status: 200, checks: expect.objectContaining({ redis: 'ok' }) as Record<string, string> })
    // Connected now: a new connection needs the store (its CONNECT is refused while Redis is away), and
    // so does the end of it: after the CONNACK Aedes reads the client's queue from Redis, and a client
    // whose read fails is disconnected. Connected first, that read is answered before the commands the
    // connections and subscriptions below send on the same Redis connection, whose replies come in order.
    const storing = await connectClient(a.mqttUrl)
    clients.push(storing)
    const sub = await connectClient(a.mqttUrl)
    const pub = await connectClient(a.mqttUrl)
    clients.push(sub, pub)
    await subscribe(sub, 'local/topic', 1)
    // A persistent session's subscription: a QoS 1 message for it must be stored in Redis.
    const durable = await connectClient(a.mqttUrl, { clientId: `durable-${process.pid}`, clean: false })
    clients.push(durable)
    await subscribe(durable, 'durable/topic', 1)

    await redis.kill()
    // At once, before the node may have noticed: a QoS 1 publish between two of its
    // clean sessions is acknowledged and delivered locally, whether Redis refused the
    // PUBLISH or the link was already known to be down (broker/backends.ts).
    const first = nextMessage(sub, t => t === 'local/topic')
    await pub.publishAsync('local/topic', 'just after', { qos: 1 })
    expect((await first).payload.toString()).toBe('just after')
    await waitFor(async () => (await readyz(a)).status === 503, { timeoutMs: 10_000, what: '/readyz to report Redis gone' })
    expect((await readyz(a)).checks.redis).not.toBe('ok')

    // This node's own responder still answers; the other node's services are not reachable: 404 at once.
    const local = await callService(a, 'local', 'while down')
    expect(local.status).toBe(200)
    expect(await local.text()).toBe('local:while down')
    const remote = await callService(a, 'remote')
    expect(remote.status).toBe(404)
    expect(((await remote.json()) as { error: { code: string } }).error.code).toBe('RTW_NO_RESPONDER')
    // Clients connected to this node keep talking to each other, at QoS 0 and 1.
    const got0 = nextMessage(sub, t => t === 'local/topic')
    pub.publish('local/topic', 'still here', { qos: 0 })
    expect((await got0).payload.toString()).toBe('still here')
    const got1 = nextMessage(sub, t => t === 'local/topic')
    await pub.publishAsync('local/topic', 'at QoS 1', { qos: 1 })
    expect((await got1).payload.toString()).toBe('at QoS 1')
    // One the persistent session must get cannot be stored: no PUBACK, the publisher is disconnected.
    let acked = false
    const closed = new Promise<void>(resolve => storing.once('close', () => resolve()))
    storing.publishAsync('durable/topic', 'needs the store', { qos: 1 }).then(() => { acked = true }, () => {})
    await closed
    expect(acked).toBe(false)

    await redis.start()
    await waitFor(async () => (await readyz(a)).status === 200 && (await readyz(b)).status === 200,
      { timeoutMs: 30_000, intervalMs: 100, what: 'both nodes to reconnect to Redis' })
    // The cluster is whole again: B's responder answers A's callers.
    await waitFor(async () => (await callService(a, 'remote')).status === 200, { timeoutMs: 20_000, intervalMs: 100, what: 'A to reach B\'s responder again' })
    expect(await (await callService(a, 'remote', 'after')).text()).toBe('remote:after')
  }, 90_000)
})
