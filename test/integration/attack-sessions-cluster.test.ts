// Attack: client id takeover across the nodes of a cluster [P-4.7], [P-4.9].
// Three real gateway processes on one real redis-server: a client id bound on
// node A is refused to another subject on nodes B and C before the cluster's
// own takeover could close A's connection; the same subject takes over across
// nodes as MQTT requires. Without auth (two nodes on a Redis of their own),
// the anonymous rule holds across nodes too.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { connackOf, connectClient, nextMessage, recordMessages, subscribe } from '../helpers/mqtt.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { gatewayNode, responder, serviceAnswers, type GatewayNode } from '../helpers/nodes.js'
import { onceWithin, waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'

const SECRET = 'attack-sessions-cluster-secret'
const token = async (...args: string[]): Promise<string> => await mintToken([...args, '--secret', SECRET], {})

/** Publishes until the subscriber has it: a subscription made on one node reaches the others' routing shortly after its SUBACK. */
async function publishUntilSeen (pub: MqttClient, sub: MqttClient, topic: string, payload: string): Promise<void> {
  await waitFor(async () => {
    const got = nextMessage(sub, t => t === topic, 300).then(() => true, () => false)
    await pub.publishAsync(topic, payload, { qos: 1 })
    return await got
  }, { timeoutMs: 15_000, intervalMs: 0, what: `${topic} to reach the subscriber` })
}

describe.skipIf(!redisAvailable())('attack: taking over another subject\'s client id on another node of the cluster', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  let c: GatewayNode
  let victimToken: string
  let attackerToken: string
  let publisherToken: string
  const clients: MqttClient[] = []
  const connect = async (url: string, password: string, opts: IClientOptions): Promise<MqttClient> => {
    const client = await connectClient(url, { username: 'u', password, ...opts })
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    redis = await startRedis()
    const env = { RTW_JWT_SECRET: SECRET }
    const start = async (): Promise<GatewayNode> => await gatewayNode({ redisUrl: redis.url, env })
    ;[a, b, c] = await Promise.all([start(), start(), start()])
    victimToken = await token('--sub', 'victim', '--subscribe', 'users/${sub}/#')
    // The attacker's token has no grants at all: only the client id is the attack.
    attackerToken = await token('--sub', 'attacker')
    publisherToken = await token('--sub', 'publisher', '--publish', 'users/#')
  }, 90_000)
  afterEach(async () => { await Promise.all(clients.splice(0).map(async c => { await c.endAsync(true) })) })
  afterAll(async () => {
    await Promise.all([a, b, c].map(async n => { await n?.kill() }))
    await redis?.close()
  })

  it('the victim live on node A: the attacker gets CONNACK 5 on B and C; the victim stays connected and keeps receiving', async () => {
    const victim = await connect(a.mqttUrl, victimToken, { clientId: 'victim-dev' })
    let closes = 0
    victim.on('close', () => { closes++ })
    await subscribe(victim, 'users/victim/#', 1)
    for (const node of [b, c]) {
      for (const clean of [true, false]) {
        expect(await connackOf(node.mqttUrl, { clientId: 'victim-dev', username: 'u', password: attackerToken, clean }), `${node.mqttUrl} clean=${String(clean)}`)
          .toEqual({ code: 5, sessionPresent: false })
      }
    }
    const publisher = await connect(c.mqttUrl, publisherToken, { clientId: 'publisher-1' })
    await publishUntilSeen(publisher, victim, 'users/victim/live', 'still yours')
    expect(victim.connected).toBe(true)
    expect(closes).toBe(0)
    const refused = await (await fetch(`${b.httpUrl}/stats`, { headers: { authorization: `Bearer ${await token('--sub', 'ops', '--subscribe', '$SYS/#')}` } })).json() as { sessions: { refusedTaken: number, store: string } }
    expect(refused.sessions).toMatchObject({ refusedTaken: 2, store: 'redis' })
  })

  it('the victim\'s persistent session, offline: the attacker gets CONNACK 5 on B whether it asks to resume or to wipe it; the victim resumes it on C with every queued message', async () => {
    const opts = { clientId: 'victim-persist', clean: false }
    const first = await connect(a.mqttUrl, victimToken, opts)
    await subscribe(first, 'users/victim/#', 1)
    // Proves the subscription is routed cluster-wide before the victim goes offline.
    const publisher = await connect(c.mqttUrl, publisherToken, { clientId: 'publisher-2' })
    await publishUntilSeen(publisher, first, 'users/victim/ready', 'ready')
    await first.endAsync()
    for (let i = 0; i < 3; i++) await publisher.publishAsync('users/victim/mail', `m${i}`, { qos: 1 })
    for (const clean of [false, true]) {
      expect(await connackOf(b.mqttUrl, { ...opts, username: 'u', password: attackerToken, clean })).toEqual({ code: 5, sessionPresent: false })
    }
    // Listening from the first byte: the queued messages follow the CONNACK at once.
    const back = mqtt.connect(c.mqttUrl, { username: 'u', password: victimToken, ...opts, reconnectPeriod: 0 })
    clients.push(back)
    const seen = recordMessages(back)
    expect((await onceWithin<{ sessionPresent: boolean }>(back, 'connect')).sessionPresent).toBe(true)
    await waitFor(() => seen.filter(m => m.topic === 'users/victim/mail').length >= 3, { what: 'the three queued messages' })
    expect(seen.filter(m => m.topic === 'users/victim/mail').map(m => m.payload.toString())).toEqual(['m0', 'm1', 'm2'])
  })

  it('the same subject connecting on node B takes over, as MQTT requires: A\'s connection closes, B\'s is the live one', async () => {
    const first = await connect(a.mqttUrl, victimToken, { clientId: 'victim-moves' })
    const closed = onceWithin(first, 'close', 15_000)
    const second = await connect(b.mqttUrl, await token('--sub', 'victim', '--subscribe', 'users/${sub}/#'), { clientId: 'victim-moves' })
    await closed
    expect(second.connected).toBe(true)
    // A's close after the takeover does not free the id: the attacker is still refused, now on A.
    expect((await connackOf(a.mqttUrl, { clientId: 'victim-moves', username: 'u', password: attackerToken })).code).toBe(5)
    await subscribe(second, 'users/victim/#', 1)
    const publisher = await connect(c.mqttUrl, publisherToken, { clientId: 'publisher-3' })
    await publishUntilSeen(publisher, second, 'users/victim/moved', 'here')
  })
})

describe.skipIf(!redisAvailable())('attack: taking over a responder\'s client id from another address on another node, without auth', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  const clients: MqttClient[] = []

  beforeAll(async () => {
    // A Redis of its own: Redis pub/sub is shared by every database of a server.
    redis = await startRedis()
    ;[a, b] = await Promise.all([gatewayNode({ redisUrl: redis.url }), gatewayNode({ redisUrl: redis.url })])
  }, 60_000)
  afterEach(async () => { await Promise.all(clients.splice(0).map(async c => { await c.endAsync(true) })) })
  afterAll(async () => {
    await Promise.all([a, b].map(async n => { await n?.kill() }))
    await redis?.close()
  })

  it('a responder on node A: CONNACK 2 on node B from another address; it keeps serving B\'s REST callers, and its own address may take it over', async () => {
    const svc = await responder(a.mqttUrl, 'anon-echo')
    clients.push(svc.client)
    let closes = 0
    svc.client.on('close', () => { closes++ })
    await serviceAnswers(b, 'anon-echo')
    const id = svc.client.options.clientId as string
    expect(await connackOf('', { clientId: id }, { address: '127.0.0.2', port: b.mqttPort })).toEqual({ code: 2, sessionPresent: false })
    const res = await fetch(`${b.httpUrl}/api/anon-echo/x`, { method: 'POST', body: 'still served', headers: { 'content-type': 'text/plain' } })
    expect(await res.text()).toBe('anon-echo:still served')
    expect(svc.client.connected).toBe(true)
    expect(closes).toBe(0)
    // From the same address the id is its holder's to take over, as MQTT requires.
    const taken = onceWithin(svc.client, 'close', 15_000)
    clients.push(await connectClient(b.mqttUrl, { clientId: id }))
    await taken
  })
})
