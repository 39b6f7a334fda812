// One test per limit (README "Limits"), with real clients: MQTT.js, raw sockets,
// mosquitto_pub and WebSocket. Each limit refuses the offender and leaves the
// gateway serving everyone else.
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { MqttClient } from 'mqtt'
import { startGateway, getStats, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, recordMessages, subscribe } from '../helpers/mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { connectPacket, publishPacket, rawConnect, remainingLength, subscribePacket } from '../helpers/raw-mqtt.js'
import { mintToken } from '../../gateway/cli/token.js'

interface ErrorJson { error: { code: string, message: string } }

/** Runs a command to completion with stdin, bounded. */
async function run (cmd: string, args: string[], stdin = '', timeoutMs = 15_000): Promise<{ code: number | null, out: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { out += c.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} did not finish: ${out}`)) }, timeoutMs)
    child.on('exit', code => { clearTimeout(timer); resolve({ code, out }) })
    child.stdin.end(stdin)
  })
}

describe('maxPacketSize: an oversized MQTT packet disconnects its sender', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ maxPacketSize: 4096 }) })
  afterAll(async () => { await gw?.close() })

  it('closes the connection at the fixed header, before the body is sent', async () => {
    const c = await rawConnect(gw.mqttPort, 'big-1')
    // Only the fixed header of a 1 MB PUBLISH: the gateway must not wait for the body.
    c.send(Buffer.concat([Buffer.from([0x30]), remainingLength(1_000_000)]))
    expect(await c.closedWithin(5_000)).toBe(true)
    expect(gw.app.limits.counters.oversizePackets).toBeGreaterThanOrEqual(1)
  })

  it('lets a packet at the limit through, and disconnects an MQTT.js client publishing over it', async () => {
    const sub = await connectClient(gw.mqttUrl)
    await subscribe(sub, 'size/#')
    const seen = recordMessages(sub)
    const pub = await connectClient(gw.mqttUrl)
    // topic "size/ok" (2+7) + payload + fixed header (1 + 2) = 4096
    await pub.publishAsync('size/ok', Buffer.alloc(4096 - 12), { qos: 0 })
    await waitFor(() => seen.length === 1, { what: 'the packet at the limit' })
    const closed = new Promise<void>(resolve => pub.once('close', () => resolve()))
    pub.publish('size/big', Buffer.alloc(5000), { qos: 0 })
    await closed
    expect(seen.map(m => m.topic)).toEqual(['size/ok'])
    // Everyone else is still served.
    await sub.publishAsync('size/after', 'x', { qos: 1 })
    await waitFor(() => seen.length === 2)
    await sub.endAsync()
    pub.end(true)
  })

  it('disconnects over WebSocket too', async () => {
    const pub = await connectClient(gw.wsUrl)
    const closed = new Promise<void>(resolve => pub.once('close', () => resolve()))
    pub.publish('size/ws', Buffer.alloc(10_000), { qos: 0 })
    await closed
    pub.end(true)
  })

  it('counts oversized packets in GET /stats', async () => {
    const stats = await getStats(gw.httpUrl) as unknown as { limits: { oversizePackets: number } }
    expect(stats.limits.oversizePackets).toBeGreaterThanOrEqual(3)
  })
})

describe('maxInFlightPerClient: 429 per caller', () => {
  let gw: TestGateway
  let held: Responder
  beforeAll(async () => {
    gw = await startGateway({ maxInFlightPerClient: 2, maxTimeoutMs: 30_000 })
    held = await Responder.start(gw.mqttUrl, '$req/slow/#')
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })

  it('answers a REST caller 429 RTW_TOO_MANY_REQUESTS past its limit, and admits it again once one settles', async () => {
    const first = fetch(`${gw.httpUrl}/api/slow/a?timeout=20`, { method: 'POST', body: '1' })
    const second = fetch(`${gw.httpUrl}/api/slow/b?timeout=20`, { method: 'POST', body: '2' })
    const reqs = await held.waitForRequests(2)
    const third = await fetch(`${gw.httpUrl}/api/slow/c?timeout=20`, { method: 'POST', body: '3' })
    expect(third.status).toBe(429)
    expect((await third.json() as ErrorJson).error.code).toBe('RTW_TOO_MANY_REQUESTS')

    await held.reply(reqs[0]!, { status: 200, body: 'one' })
    expect((await first).status).toBe(200)
    const fourth = fetch(`${gw.httpUrl}/api/slow/d?timeout=20`, { method: 'POST', body: '4' })
    const now = await held.waitForRequests(3)
    await held.reply(now[1]!, { body: 'two' })
    await held.reply(now[2]!, { body: 'four' })
    expect((await second).status).toBe(200)
    expect((await fourth).status).toBe(200)
    held.requests.length = 0
  })

  it('answers an MQTT-native caller 429 in its inbox, per client id', async () => {
    const caller = await connectClient(gw.mqttUrl, { clientId: 'limits-caller-1' })
    const other = await connectClient(gw.mqttUrl, { clientId: 'limits-caller-2' })
    try {
      await subscribe(caller, '$inbox/limits-caller-1/#')
      await subscribe(other, '$inbox/limits-caller-2/#')
      const inbox = recordMessages(caller)
      const otherInbox = recordMessages(other)
      const ask = async (c: MqttClient, id: string, client: string): Promise<void> => {
        await c.publishAsync('$req/slow/x', JSON.stringify({ id, replyTo: `$inbox/${client}/r`, timeout: 20_000 }), { qos: 1 })
      }
      await ask(caller, 'a', 'limits-caller-1')
      await ask(caller, 'b', 'limits-caller-1')
      await held.waitForRequests(2)
      await ask(caller, 'c', 'limits-caller-1')
      await waitFor(() => inbox.length === 1, { what: 'the 429 in the inbox' })
      const reply = JSON.parse(inbox[0]!.payload.toString()) as { id: string, status: number, body: string }
      expect(reply.id).toBe('c')
      expect(reply.status).toBe(429)
      expect((JSON.parse(reply.body) as ErrorJson).error.code).toBe('RTW_TOO_MANY_REQUESTS')

      // Another client is not affected by this one's limit.
      await ask(other, 'z', 'limits-caller-2')
      const reqs = await held.waitForRequests(3)
      for (const r of reqs) await held.reply(r, { body: 'ok' })
      await waitFor(() => inbox.length === 3 && otherInbox.length === 1, { what: 'the three answers' })
      expect(otherInbox.map(m => (JSON.parse(m.payload.toString()) as { status: number }).status)).toEqual([200])
    } finally {
      held.requests.length = 0
      await caller.endAsync()
      await other.endAsync()
    }
  })
})

describe('maxInFlightPerClient with auth: counted per token subject', () => {
  const SECRET = 'limits-test-secret'
  let gw: TestGateway
  let held: Responder
  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, maxInFlightPerClient: 1, maxTimeoutMs: 30_000 })
    held = await Responder.start(gw.mqttUrl, '$req/slow/#', undefined, { username: 'svc', password: await mintToken(['--sub', 'svc', '--serve', 'slow', '--secret', SECRET], {}) })
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })

  it('lets bob call while alice is at her limit', async () => {
    const alice = `Bearer ${await mintToken(['--sub', 'alice', '--call', 'slow', '--secret', SECRET], {})}`
    const bob = `Bearer ${await mintToken(['--sub', 'bob', '--call', 'slow', '--secret', SECRET], {})}`
    const call = (auth: string): Promise<Response> => fetch(`${gw.httpUrl}/api/slow/x?timeout=20`, { method: 'POST', body: 'x', headers: { authorization: auth } })
    const a1 = call(alice)
    await held.waitForRequests(1)
    expect((await call(alice)).status).toBe(429)
    const b1 = call(bob)
    const reqs = await held.waitForRequests(2)
    for (const r of reqs) await held.reply(r, { body: 'ok' })
    expect((await a1).status).toBe(200)
    expect((await b1).status).toBe(200)
  })
})

describe('publishRate: a client over it is slowed down, nothing is dropped', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ publishRate: 5 }) })
  afterAll(async () => { await gw?.close() })

  it('delivers every QoS 1 publish, at about publishRate per second, and keeps the connection', async () => {
    const sub = await connectClient(gw.mqttUrl)
    await subscribe(sub, 'rate/#')
    const seen = recordMessages(sub)
    const pub = await connectClient(gw.mqttUrl)
    const start = Date.now()
    await Promise.all(Array.from({ length: 20 }, async (_, i) => await pub.publishAsync('rate/x', String(i), { qos: 1 })))
    await waitFor(() => seen.length === 20, { what: 'every publish delivered' })
    // A burst of 5, then 5 per second: the other 15 need 3 s.
    expect(Date.now() - start).toBeGreaterThanOrEqual(2_800)
    expect(seen.map(m => m.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
    expect(gw.app.limits.counters.publishesDelayed).toBeGreaterThan(0)
    expect(pub.connected).toBe(true)
    await pub.endAsync()
    await sub.endAsync()
  })

  it('does not count a responder\'s replies on $res/…: it answers as many requests as callers send', async () => {
    const echo = await startEcho(gw.mqttUrl)
    try {
      const answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => await fetch(`${gw.httpUrl}/api/echo/n`, { method: 'POST', body: String(i) })))
      expect(answers.map(a => a.status)).toEqual(Array.from({ length: 30 }, () => 200))
    } finally {
      await echo.close()
    }
  })

  it('answers every request of an MQTT caller over the rate, later rather than never', async () => {
    const caller = await connectClient(gw.mqttUrl, { clientId: 'rate-caller' })
    await subscribe(caller, '$inbox/rate-caller/#')
    const replies = recordMessages(caller)
    for (let i = 0; i < 12; i++) caller.publish('$req/nobody/x', JSON.stringify({ id: String(i), replyTo: '$inbox/rate-caller/r' }))
    await waitFor(() => replies.length === 12, { what: 'an answer to each of 12 requests' })
    // 404: nobody serves "nobody"; none was refused for the rate.
    expect(replies.map(r => (JSON.parse(r.payload.toString()) as { status: number }).status)).toEqual(Array.from({ length: 12 }, () => 404))
    await caller.endAsync()
  })

  it('works the same for mosquitto_pub: every line delivered', async () => {
    const sub = await connectClient(gw.mqttUrl)
    await subscribe(sub, 'rate-m/#')
    const seen = recordMessages(sub)
    const lines = Array.from({ length: 15 }, (_, i) => `line ${i}`).join('\n') + '\n'
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-t', 'rate-m/x', '-l'], lines)
    expect(r.code, r.out).toBe(0)
    await waitFor(() => seen.length === 15, { what: 'every line delivered' })
    expect(seen.map(m => m.payload.toString())).toEqual(Array.from({ length: 15 }, (_, i) => `line ${i}`))
    await sub.endAsync()
  })
})

describe('connectRate: new connections per second per remote address', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 3 }) })
  afterAll(async () => { await gw?.close() })

  it('lets a TCP burst over the rate wait for its turn, and every connection is accepted', async () => {
    const start = Date.now()
    const tries = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const c = await rawConnect(gw.mqttPort)
      c.send(connectPacket(`flood-${i}`))
      await c.next('connack', 10_000)
      c.destroy()
      return (c.packets.find(p => p.cmd === 'connack') as { returnCode?: number }).returnCode
    }))
    expect(tries).toEqual(Array.from({ length: 8 }, () => 0))
    // A burst of 3, then 3 per second: the other 5 need about 1.7 s.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1_500)
    expect(gw.app.limits.counters.connectionsDelayed).toBeGreaterThanOrEqual(4)
    expect(gw.app.limits.counters.connectionsRefused).toBe(0)
  })

  it('answers a WebSocket upgrade over the rate once its turn comes', async () => {
    const before = gw.app.limits.counters.connectionsDelayed
    const answers = await Promise.all(Array.from({ length: 6 }, async () => await new Promise<number>(resolve => {
      const ws = new WebSocket(gw.wsUrl, 'mqtt')
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
      ws.on('open', () => { ws.terminate(); resolve(101) })
      ws.on('error', () => resolve(0))
    })))
    expect(answers).toEqual(Array.from({ length: 6 }, () => 101))
    expect(gw.app.limits.counters.connectionsDelayed - before).toBeGreaterThanOrEqual(2)
  })
})

describe('connectRate\'s hard bound: a connection that would wait more than 20 s is refused', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 1 }) })
  afterAll(async () => { await gw?.close() })

  it('closes a TCP connection and answers an upgrade 429 with Retry-After, once 20 s of turns are taken', async () => {
    // One a second: the first goes on, the next 20 wait 1…20 s, the 22nd would wait 21 s.
    const waiting = await Promise.all(Array.from({ length: 21 }, async () => await rawConnect(gw.mqttPort)))
    try {
      const refused = await rawConnect(gw.mqttPort)
      expect(await refused.closedWithin(5_000)).toBe(true)
      const answer = await new Promise<{ status: number, retry?: string }>(resolve => {
        const ws = new WebSocket(gw.wsUrl, 'mqtt')
        ws.on('unexpected-response', (_req, res) => { resolve({ status: res.statusCode ?? 0, retry: res.headers['retry-after'] }); ws.terminate() })
        ws.on('open', () => { ws.terminate(); resolve({ status: 101 }) })
        ws.on('error', () => resolve({ status: 0 }))
      })
      expect(answer).toEqual({ status: 429, retry: '1' })
      expect(gw.app.limits.counters.connectionsRefused).toBe(2)
      expect(waiting.some(c => c.closed)).toBe(false)
    } finally {
      for (const c of waiting) c.destroy()
    }
  })
})

describe('maxSubscriptions: SUBACK 0x80 past the limit', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ maxSubscriptions: 3 }) })
  afterAll(async () => { await gw?.close() })

  it('grants the first filters, refuses the rest, re-grants held ones, and frees a slot on unsubscribe', async () => {
    const c = await connectClient(gw.mqttUrl)
    try {
      expect(await grantedQos(c, ['s/a', 's/b', 's/c', 's/d', 's/e'])).toEqual([1, 1, 1, 128, 128])
      expect(await grantedQos(c, 's/a')).toEqual([1])
      await c.unsubscribeAsync('s/b')
      expect(await grantedQos(c, 's/f')).toEqual([1])
      expect(await grantedQos(c, 's/g')).toEqual([128])
      expect(c.connected).toBe(true)
      // A refused filter receives nothing; a granted one does.
      const seen = recordMessages(c)
      await c.publishAsync('s/d', 'no', { qos: 1 })
      await c.publishAsync('s/f', 'yes', { qos: 1 })
      await waitFor(() => seen.length >= 1)
      expect(seen.map(m => m.topic)).toEqual(['s/f'])
      expect(gw.app.limits.counters.subscriptionsRefused).toBe(3)
    } finally {
      await c.endAsync()
    }
  })
})

describe('maxTopicLength and maxTopicLevels', () => {
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ maxTopicLength: 32, maxTopicLevels: 4 })
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('closes the connection of a PUBLISH with a topic over maxTopicLength, without PUBACK or delivery', async () => {
    const sub = await connectClient(gw.mqttUrl)
    await subscribe(sub, '#')
    const seen = recordMessages(sub)
    const c = await rawConnect(gw.mqttPort, 'long-topic')
    c.send(publishPacket('t/' + 'x'.repeat(31), 'x', 1, 7))
    expect(await c.closedWithin()).toBe(true)
    expect(c.packets.some(p => p.cmd === 'puback')).toBe(false)
    // Counted in UTF-8 bytes: 11 "é" are 22 bytes plus "t/" = 24 ≤ 32, 16 are 34.
    const ok = await rawConnect(gw.mqttPort, 'utf8-topic')
    ok.send(publishPacket('t/' + 'é'.repeat(11), 'x', 1, 8))
    await ok.next('puback')
    ok.send(publishPacket('t/' + 'é'.repeat(16), 'x', 1, 9))
    expect(await ok.closedWithin()).toBe(true)
    await waitFor(() => seen.length === 1)
    expect(seen.map(m => m.topic)).toEqual(['t/' + 'é'.repeat(11)])
    await sub.endAsync()
  })

  it('closes the connection of a PUBLISH with more than maxTopicLevels levels', async () => {
    const c = await rawConnect(gw.mqttPort, 'deep-topic')
    c.send(publishPacket('a/b/c/d', 'x', 1, 1))
    await c.next('puback')
    c.send(publishPacket('a/b/c/d/e', 'x', 1, 2))
    expect(await c.closedWithin()).toBe(true)
    expect(c.packets.filter(p => p.cmd === 'puback')).toHaveLength(1)
  })

  it('refuses a SUBSCRIBE over either limit with 0x80 and keeps the connection', async () => {
    const c = await connectClient(gw.mqttUrl)
    try {
      expect(await grantedQos(c, ['a/b/c/#', 'a/b/c/d/#', 'x'.repeat(33), 'ok'])).toEqual([1, 128, 128, 1])
      expect(c.connected).toBe(true)
    } finally {
      await c.endAsync()
    }
  })

  it('answers REST 400 for a request or publish topic over the limits', async () => {
    const deep = await fetch(`${gw.httpUrl}/api/echo/a/b/c`, { method: 'POST', body: 'x' })
    expect(deep.status).toBe(400)
    expect((await deep.json() as ErrorJson).error.code).toBe('RTW_BAD_TARGET')
    expect((await fetch(`${gw.httpUrl}/api/echo/a/b`, { method: 'POST', body: 'x' })).status).toBe(200)
    const long = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'x'.repeat(33), payload: 'x' }) })
    expect(long.status).toBe(400)
    expect((await long.json() as ErrorJson).error.code).toBe('RTW_BAD_TOPIC')
  })

  it('mosquitto_pub over the level limit is disconnected (non-zero exit)', async () => {
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-t', 'a/b/c/d/e', '-m', 'x'])
    expect(r.code).not.toBe(0)
    const ok = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-t', 'a/b/c/d', '-m', 'x'])
    expect(ok.code, ok.out).toBe(0)
  })
})

describe('maxOutboundBytes: slow consumers are disconnected instead of growing memory', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ maxOutboundBytes: 262_144 }) })
  afterAll(async () => { await gw?.close() })

  it('disconnects a TCP and a WebSocket subscriber that stop reading, and keeps delivering to a reading one', async () => {
    const gone = new Set<string>()
    gw.app.broker.aedes.on('clientDisconnect', client => gone.add(client.id))

    const tcp = await rawConnect(gw.mqttPort, 'slow-tcp')
    tcp.send(subscribePacket(['flood/#']))
    await tcp.next('suback')
    tcp.socket.pause()

    const ws = new WebSocket(gw.wsUrl, 'mqtt')
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    const wsPackets: Buffer[] = []
    ws.on('message', (d: Buffer) => wsPackets.push(d))
    ws.send(connectPacket('slow-ws'))
    ws.send(subscribePacket(['flood/#']))
    await waitFor(() => wsPackets.length >= 2 || Buffer.concat(wsPackets).length >= 9, { what: 'CONNACK and SUBACK over WebSocket' })
    const raw = (ws as unknown as { _socket: { pause: () => void } })._socket
    raw.pause()

    const good = await connectClient(gw.mqttUrl)
    await subscribe(good, 'flood/#', 0)
    let received = 0
    good.on('message', () => { received++ })

    const pub = await connectClient(gw.mqttUrl)
    const payload = Buffer.alloc(16 * 1024, 1)
    // Paced in rounds the reading subscriber keeps up with (it shares this process's event loop with the gateway).
    // Rounds go on until both slow consumers are gone: the limit is checked when a message is forwarded, so a
    // consumer that crossed it in the last round of a fixed flood would be left to Aedes's 10 s drainTimeout.
    // 4,000 messages (64 MB) is far more than the kernel's socket buffers can hide on loopback.
    let sent = 0
    while (!(gone.has('slow-tcp') && gone.has('slow-ws'))) {
      expect(sent, 'messages sent before both slow consumers were disconnected').toBeLessThan(4_000)
      for (let i = 0; i < 50; i++) pub.publish('flood/x', payload, { qos: 0 })
      sent += 50
      await waitFor(() => received === sent, { timeoutMs: 10_000, what: `message ${sent} at the reading subscriber (have ${received})` })
    }
    expect(good.connected).toBe(true)
    expect(gw.app.limits.counters.slowConsumers).toBe(2)
    tcp.destroy()
    ws.terminate()
    await pub.endAsync()
    await good.endAsync()
  })
})

describe('bodyLimit: 413 for a REST body over it', () => {
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ bodyLimit: 1024 })
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('answers 413 RTW_PAYLOAD_TOO_LARGE, and the next call works', async () => {
    const res = await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'x'.repeat(2048) })
    expect(res.status).toBe(413)
    expect((await res.json() as ErrorJson).error.code).toBe('RTW_PAYLOAD_TOO_LARGE')
    expect((await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'ok' })).status).toBe(200)
  })
})
