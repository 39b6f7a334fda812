// Three gateway processes (dist/, free ports) on one real redis-server act as
// one gateway (docs/CLUSTER.md): pub/sub across nodes once at the right QoS,
// REST and MQTT-native calls answered by a responder on another node, ids
// unique per cluster [P-5.1], the cluster-wide 404 [P-5.8], client id takeover,
// and a node killed with SIGKILL under load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { callService as call, echoServer, gatewayNode, responder, serviceAnswers, type GatewayNode } from '../helpers/nodes.js'
import type { TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { HEARTBEAT_MS, NODE_TTL_MS } from '../../gateway/cluster/node.js'

/** The documented bound for a responder joining or leaving to be seen on every node (docs/CLUSTER.md), with room for a loaded machine. */
const SEEN_WITHIN_MS = HEARTBEAT_MS + 4_000

interface Stats { cluster: { node: string, nodes: string[], counters: { repliesForwarded: number } } }

async function stats (node: GatewayNode): Promise<Stats> {
  return await (await fetch(`${node.httpUrl}/stats`)).json() as Stats
}

describe('a cluster of three gateways on one Redis', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  let c: GatewayNode
  const clients: MqttClient[] = []
  const procs: TestProcess[] = []

  beforeAll(async () => {
    redis = await startRedis()
    const nodes = await Promise.all([0, 1, 2].map(async () => await gatewayNode({ redisUrl: redis.url })))
    a = nodes[0] as GatewayNode
    b = nodes[1] as GatewayNode
    c = nodes[2] as GatewayNode
    await waitFor(async () => (await Promise.all([a, b, c].map(stats))).every(s => s.cluster.nodes.length === 2),
      { timeoutMs: 10_000, what: 'every node to know the other two' })
  }, 60_000)
  afterAll(async () => {
    for (const cl of clients) cl.end(true)
    for (const p of procs) await p.killGroup()
    for (const n of [a, b, c]) await n?.kill()
    await redis?.close()
  })

  it('delivers a message published on one node to subscribers on the others, once each, at the granted QoS', async () => {
    const onB = await connectClient(b.mqttUrl)
    const onC = await connectClient(c.mqttUrl)
    const onA = await connectClient(a.mqttUrl)
    clients.push(onB, onC, onA)
    const seen = new Map<MqttClient, Array<{ payload: string, qos: number }>>()
    for (const [cl, qos] of [[onB, 1], [onC, 0], [onA, 1]] as const) {
      const list: Array<{ payload: string, qos: number }> = []
      seen.set(cl, list)
      cl.on('message', (topic, payload, packet) => { if (topic.startsWith('fan/') && topic !== 'fan/probe') list.push({ payload: payload.toString(), qos: packet.qos }) })
      await subscribe(cl, 'fan/#', qos)
    }
    const publisher = await connectClient(a.mqttUrl)
    clients.push(publisher)
    // The subscriptions reach every node's routing through Redis before the publishes do.
    const probed = new Set<MqttClient>()
    for (const cl of seen.keys()) cl.on('message', topic => { if (topic === 'fan/probe') probed.add(cl) })
    await waitFor(async () => {
      await publisher.publishAsync('fan/probe', 'probe', { qos: 1 })
      return probed.size === 3
    }, { timeoutMs: 10_000, what: 'the subscriptions to be routed' })
    for (let i = 0; i < 50; i++) await publisher.publishAsync(`fan/${i % 5}`, String(i), { qos: 1 })
    await publisher.publishAsync('fan/end', 'end', { qos: 1 })
    await waitFor(() => [...seen.values()].every(l => l.some(m => m.payload === 'end')), { what: 'the last message everywhere' })
    const expected = [...Array.from({ length: 50 }, (_, i) => String(i)), 'end']
    // One publisher's messages keep their order through Redis, so once 'end' is in, every copy is.
    expect(seen.get(onB)?.map(m => m.payload)).toEqual(expected)
    expect(seen.get(onC)?.map(m => m.payload)).toEqual(expected)
    expect(seen.get(onA)?.map(m => m.payload)).toEqual(expected)
    expect(new Set(seen.get(onB)?.map(m => m.qos))).toEqual(new Set([1]))
    expect(new Set(seen.get(onC)?.map(m => m.qos))).toEqual(new Set([0]))
  })

  it('routes across nodes a topic with Redis glob characters ([, ], ?, *, \\) to a wildcard filter that names them literally', async () => {
    const onB = await connectClient(b.mqttUrl)
    const publisher = await connectClient(a.mqttUrl)
    clients.push(onB, publisher)
    const topics = ['glob/[x]/1', 'glob/a?c/2', 'glob/st*r/3', 'glob/back\\slash/4']
    const got: string[] = []
    onB.on('message', topic => { if (topic.startsWith('glob/')) got.push(topic) })
    // mqemitter-redis makes a filter with + or # a Redis PSUBSCRIBE pattern, in which these characters are glob syntax (docs/CLUSTER.md).
    await subscribe(onB, ['glob/[x]/+', 'glob/a?c/+', 'glob/st*r/+', 'glob/back\\slash/#'])
    // Near misses a glob would match but the MQTT filters do not.
    for (const t of ['glob/x/1', 'glob/abc/2', 'glob/stoor/3']) await publisher.publishAsync(t, 'no', { qos: 1 })
    for (const t of topics) await publisher.publishAsync(t, 'yes', { qos: 1 })
    await waitFor(() => got.length >= topics.length, { what: 'the four literal topics on the other node' })
    await publisher.publishAsync('glob/[x]/end', 'yes', { qos: 1 })
    await waitFor(() => got.includes('glob/[x]/end'), { what: 'a last marker' })
    expect(got).toEqual([...topics, 'glob/[x]/end'])
  })

  it('answers a REST call on one node from a responder on another, with ids that name the calling node', async () => {
    const r = await responder(b.mqttUrl, 'cross')
    clients.push(r.client)
    await waitFor(async () => (await call(a, 'cross')).status === 200, { timeoutMs: SEEN_WITHIN_MS, what: 'node A to see the responder on B' })
    const before = r.ids.length
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (await call(i % 2 === 0 ? a : c, 'cross', `n${i}`)).text()))
    expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => `cross:n${i}`))
    const [sa, sb, sc] = await Promise.all([a, b, c].map(stats))
    const nodeIds = [sa, sb, sc].map(s => s?.cluster.node)
    expect(new Set(nodeIds).size).toBe(3)
    // [P-5.1] every id starts with the id of the node whose caller waits.
    const ids = r.ids.slice(before)
    expect(ids.filter(id => id.startsWith(sa?.cluster.node ?? '?'))).toHaveLength(10)
    expect(ids.filter(id => id.startsWith(sc?.cluster.node ?? '?'))).toHaveLength(10)
    expect(new Set(ids).size).toBe(20)
    // B took the replies from its responder and forwarded them [P-5.9].
    expect(sb?.cluster.counters.repliesForwarded).toBeGreaterThanOrEqual(20)
  })

  it('answers an MQTT-native caller on one node from a responder on another [P-4]', async () => {
    const r = await responder(a.mqttUrl, 'native')
    clients.push(r.client)
    const caller = await connectClient(c.mqttUrl, { clientId: 'native-caller-1' })
    clients.push(caller)
    await subscribe(caller, '$inbox/native-caller-1/#', 1)
    await waitFor(async () => (await call(c, 'native')).status === 200, { timeoutMs: SEEN_WITHIN_MS, what: 'node C to see the responder on A' })
    const reply = nextMessage(caller, t => t === '$inbox/native-caller-1/r')
    await caller.publishAsync('$req/native/x', JSON.stringify({ id: 'q1', replyTo: '$inbox/native-caller-1/r', body: 'from C' }), { qos: 1 })
    const got = JSON.parse((await reply).payload.toString()) as { id: string, status: number, body: string }
    expect(got).toMatchObject({ id: 'q1', status: 200, body: 'native:from C' })
  })

  it('answers 404 at once when no node has a responder, and sees one join and leave on any node within the bound [P-5.8]', async () => {
    for (const n of [a, b, c]) {
      const res = await call(n, 'late')
      expect(res.status).toBe(404)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_NO_RESPONDER')
    }
    const r = await responder(c.mqttUrl, 'late')
    for (const n of [a, b]) await waitFor(async () => (await call(n, 'late')).status === 200, { timeoutMs: SEEN_WITHIN_MS, what: `${n.httpUrl} to see the new responder` })
    await r.client.endAsync()
    // Until a node has seen the responder leave, a call waits for its 1 s timeout (504).
    for (const n of [a, b, c]) await waitFor(async () => (await call(n, 'late', 'hi', 1)).status === 404, { timeoutMs: SEEN_WITHIN_MS, what: `${n.httpUrl} to see it leave` })
  })

  it('closes the session on one node when its client id connects to another [MQTT-3.1.4-2]', async () => {
    const first = await connectClient(a.mqttUrl, { clientId: 'takeover-1' })
    const closed = new Promise<void>(resolve => first.once('close', () => resolve()))
    const second = await connectClient(b.mqttUrl, { clientId: 'takeover-1' })
    clients.push(first, second)
    await closed
    expect(second.connected).toBe(true)
    // The new session is the live one: it gets what is published for it.
    await subscribe(second, 'takeover/x', 1)
    const got = nextMessage(second, t => t === 'takeover/x')
    const pub = await connectClient(c.mqttUrl)
    clients.push(pub)
    await waitFor(async () => {
      await pub.publishAsync('takeover/x', 'yours', { qos: 1 })
      return await Promise.race([got.then(() => true), new Promise<boolean>(resolve => setTimeout(() => resolve(false), 200))])
    }, { what: 'the publish to reach the new session' })
  })

  it('survives kill -9 of a node under load: callers elsewhere are undisturbed, its clients move on, sessions resume with their queue', async () => {
    // The echo server on A moves to B when A dies; another one on C keeps answering throughout.
    const movingEcho = echoServer([a.mqttUrl, b.mqttUrl])
    const steadyEcho = echoServer([c.mqttUrl])
    procs.push(movingEcho, steadyEcho)
    await movingEcho.waitForOutput(/answering \$req\/echo/)
    await steadyEcho.waitForOutput(/answering \$req\/echo/)
    for (const n of [a, b, c]) await serviceAnswers(n)

    // A persistent session on A, offline, with QoS 1 messages queued for it from C.
    const device = await connectClient(a.mqttUrl, { clientId: 'dev-failover', clean: false })
    await subscribe(device, 'dev/failover/cmd', 1)
    await device.endAsync()
    const pub = await connectClient(c.mqttUrl)
    clients.push(pub)
    for (let i = 0; i < 5; i++) await pub.publishAsync('dev/failover/cmd', `q${i}`, { qos: 1 })

    // Load: callers on B and C, four at a time each, until told to stop.
    let stop = false
    const statuses: number[] = []
    const failures: string[] = []
    const lane = async (node: GatewayNode): Promise<void> => {
      while (!stop) {
        try {
          statuses.push((await call(node, 'echo')).status)
        } catch (err) {
          failures.push(`${node.httpUrl}: ${(err as Error).message}`)
        }
      }
    }
    const lanes = [b, c, b, c, b, c, b, c].map(lane)
    await waitFor(() => statuses.length >= 50, { what: 'load to start' })
    await a.kill()
    const atKill = statuses.length
    await movingEcho.waitForOutput(new RegExp(`reconnecting to 127\\.0\\.0\\.1:${b.mqttPort}`), 15_000)
    await waitFor(() => (movingEcho.output().match(/answering \$req\/echo/g) ?? []).length >= 2, { timeoutMs: 15_000, what: 'the echo server to answer on B' })

    // The session resumes on B with its queue, as on the node it left.
    const back = mqtt.connect(b.mqttUrl, { clientId: 'dev-failover', clean: false, reconnectPeriod: 0 })
    clients.push(back)
    // Listening from the start: queued messages may come in the same read as the CONNACK.
    const queued: string[] = []
    back.on('message', (_t, p) => queued.push(p.toString()))
    const connack = await new Promise<IConnackPacket>((resolve, reject) => { back.once('connect', resolve); back.once('error', reject) })
    expect(connack.sessionPresent).toBe(true)
    await waitFor(() => queued.length >= 5, { what: 'the queued messages on B' })
    expect(queued.sort()).toEqual(['q0', 'q1', 'q2', 'q3', 'q4'])

    await waitFor(() => statuses.length >= atKill + 200, { timeoutMs: 20_000, what: 'load to go on after the kill' })
    stop = true
    await Promise.all(lanes)
    expect(failures).toEqual([])
    expect(statuses.filter(s => s !== 200)).toEqual([])
    // A's responders are gone from the view of the others within the TTL.
    await waitFor(async () => (await Promise.all([b, c].map(stats))).every(s => s.cluster.nodes.length === 1),
      { timeoutMs: NODE_TTL_MS + 4_000, what: 'B and C to forget A' })
  }, 90_000)
})
