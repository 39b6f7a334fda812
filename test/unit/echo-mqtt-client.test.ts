// echo-server/mqtt-client.ts, the echo server's own MQTT 3.1.1 client: against
// the real embedded Aedes broker, and against a scripted broker on a raw socket
// where the test must see or send exact packets (packet ids, QoS 2, keepalive).
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'
import { MqttClient, parseBrokerUrl, type MqttClientOptions } from '../../echo-server/mqtt-client.js'
import { echo } from '../../echo-server/echo.js'

const FILTERS = ['$req/echo/#', '$req/realtimeweb/#']

interface Harness {
  client: MqttClient
  clientId: string
  messages: Array<{ topic: string, payload: Buffer }>
  subscribed: Array<{ filter: string, granted: boolean }>
  log: string[]
}

const clients: MqttClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map(c => c.end()))
})

/** A client that answers like the echo server, replying at replyQos, and records what it saw. */
function startClient (url: string, opts: Partial<MqttClientOptions> & { replyQos?: 0 | 1 } = {}): Harness {
  const clientId = `echo-test-${randomBytes(4).toString('hex')}`
  const h: Omit<Harness, 'client'> = { clientId, messages: [], subscribed: [], log: [] }
  const client: MqttClient = new MqttClient({
    url,
    clientId,
    subscriptions: FILTERS,
    reconnectPeriodMs: 50,
    onMessage: (topic, payload) => {
      h.messages.push({ topic, payload })
      const out = echo(topic, payload)
      if (out !== null) client.publish(out.topic, out.payload, opts.replyQos ?? 0)
    },
    onSubscribe: (filter, granted) => h.subscribed.push({ filter, granted }),
    onLog: line => h.log.push(line),
    ...opts
  })
  clients.push(client)
  return { ...h, client }
}

async function subscribedOn (gw: TestGateway): Promise<void> {
  await waitFor(() => FILTERS.every(f => gw.app.broker.subscriptions.hasMatch(f.replace('#', 'x'))), { what: 'the client to subscribe' })
}

async function call (gw: TestGateway, body: string, service = 'echo'): Promise<Response> {
  return await fetch(`${gw.httpUrl}/api/${service}/p?timeout=10`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
}

describe('parseBrokerUrl', () => {
  it('takes mqtt:// and mqtts:// with their default ports, IPv6 literals and credentials', () => {
    expect(parseBrokerUrl('mqtt://127.0.0.1')).toEqual({ tls: false, host: '127.0.0.1', port: 1883 })
    expect(parseBrokerUrl('mqtts://broker.example:9000')).toEqual({ tls: true, host: 'broker.example', port: 9000 })
    expect(parseBrokerUrl('mqtts://[::1]')).toEqual({ tls: true, host: '::1', port: 8883 })
    expect(parseBrokerUrl('mqtt://u%40x:p%3Aw@h:1')).toEqual({ tls: false, host: 'h', port: 1, username: 'u@x', password: 'p:w' })
  })

  it('refuses any other scheme', () => {
    expect(() => parseBrokerUrl('ws://127.0.0.1:8080/mqtt')).toThrow(/unsupported scheme ws:/)
    expect(() => parseBrokerUrl('tcp://127.0.0.1:1883')).toThrow(/unsupported scheme/)
    expect(() => parseBrokerUrl('127.0.0.1:1883')).toThrow()
    expect(() => new MqttClient({ url: 'http://x', clientId: 'x', subscriptions: [], onMessage: () => {} })).toThrow(/unsupported scheme/)
  })
})

describe('against the embedded broker', () => {
  let gw: TestGateway
  afterEach(async () => { await gw?.close() })

  it('connects with a clean session, subscribes each filter at QoS 1 and reports it', async () => {
    gw = await startGateway()
    const h = startClient(gw.mqttUrl)
    await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
    expect(h.subscribed).toEqual(FILTERS.map(filter => ({ filter, granted: true })))
    expect(h.client.isConnected).toBe(true)
    const aedesClient = await waitFor(() => (gw.app.broker.aedes as unknown as { clients: Record<string, { clean: boolean }> }).clients[h.clientId])
    expect(aedesClient.clean).toBe(true)
  })

  it('acknowledges a QoS 1 delivery once, so the broker neither waits nor redelivers', async () => {
    gw = await startGateway()
    const h = startClient(gw.mqttUrl)
    await subscribedOn(gw)
    // Aedes emits 'ack' for each PUBACK it reads (with no packet for a clean session, which it does not store).
    let acks = 0
    gw.app.broker.aedes.on('ack', (_packet, client) => { if (client.id === h.clientId) acks++ })
    await new Promise<void>((resolve, reject) => gw.app.broker.publish('$req/echo/q1', Buffer.from('not json'), 1, false, err => err ? reject(err) : resolve()))
    await waitFor(() => acks === 1, { what: 'the PUBACK at the broker' })
    // A second delivery after the first was acknowledged: had the first been redelivered, it would be here by now.
    gw.app.broker.publish('$req/echo/q2', Buffer.from('barrier'), 1, false, () => {})
    await waitFor(() => acks === 2, { what: 'the second PUBACK' })
    expect(h.messages.map(m => m.topic)).toEqual(['$req/echo/q1', '$req/echo/q2'])
    expect(h.messages[0]?.payload.toString()).toBe('not json')
  })

  it('replies at QoS 0 and at QoS 1', async () => {
    gw = await startGateway()
    // The gateway consumes $res/ replies before Aedes's 'publish' event, so the QoS is read where
    // every client PUBLISH reaches the pipeline's publish stages, whichever way it was parsed.
    const broker = gw.app.broker
    const replies = new Map<string, number[]>()
    broker.use([{
      name: 'record-replies',
      publish (client, packet) {
        if (packet.topic.startsWith('$res/')) replies.set(client.id, [...replies.get(client.id) ?? [], packet.qos])
        return false
      }
    }, ...broker.pipeline.stages])
    for (const qos of [0, 1] as const) {
      const h = startClient(gw.mqttUrl, { replyQos: qos })
      await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
      const res = await call(gw, `at qos ${qos}`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe(`at qos ${qos}`)
      const raw = await call(gw, 'raw', 'realtimeweb')
      expect(await raw.text()).toBe('raw')
      expect(replies.get(h.clientId)).toEqual([qos, qos])
      await h.client.end()
      await waitFor(() => !gw.app.broker.subscriptions.hasMatch('$req/echo/x'), { what: 'the client to leave' })
    }
  })

  it('answers 200 concurrent requests, each with its own body', async () => {
    gw = await startGateway()
    const h = startClient(gw.mqttUrl, { replyQos: 1 })
    await subscribedOn(gw)
    const bodies = Array.from({ length: 200 }, (_, i) => `request ${i} ${randomBytes(8).toString('hex')}`)
    const answers = await Promise.all(bodies.map(async b => {
      const res = await call(gw, b)
      return `${res.status} ${await res.text()}`
    }))
    expect(answers).toEqual(bodies.map(b => `200 ${b}`))
    expect(h.messages).toHaveLength(200)
  })

  it('reconnects and resubscribes after the broker restarts on the same port', async () => {
    gw = await startGateway()
    const h = startClient(gw.mqttUrl)
    await subscribedOn(gw)
    const mqttPort = gw.mqttPort
    await gw.close()
    await waitFor(() => !h.client.isConnected, { what: 'the client to see the drop' })
    expect(h.client.publish('$res/echo/lost', Buffer.from('x'), 1)).toBe(false)
    gw = await startGateway({ mqttPort })
    await subscribedOn(gw)
    // The broker holds the filters before its SUBACKs reach the client.
    await waitFor(() => h.subscribed.length >= 4, { what: 'the SUBACKs of the second connection' })
    expect(h.subscribed).toHaveLength(4)
    const res = await call(gw, 'after restart')
    expect(await res.text()).toBe('after restart')
    expect(h.log.some(l => /reconnecting/.test(l))).toBe(true)
  })

  it('given a list of brokers, moves to the next one when its broker goes away', async () => {
    gw = await startGateway()
    const other = await startGateway()
    try {
      const h = startClient(`${gw.mqttUrl}, ${other.mqttUrl}`)
      await subscribedOn(gw)
      expect(other.app.broker.subscriptions.hasMatch('$req/echo/x')).toBe(false)
      await gw.close()
      await subscribedOn(other)
      expect(await (await call(other, 'on the second node')).text()).toBe('on the second node')
      expect(h.log.some(l => l.includes(`reconnecting to 127.0.0.1:${other.mqttPort}`))).toBe(true)
    } finally {
      await other.close()
    }
  })

  it('retries after a refused CONNACK and connects once the broker accepts it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtw-echo-client-'))
    try {
      const keys = join(dir, 'keys.json')
      writeFileSync(keys, JSON.stringify({ keys: [{ key: randomBytes(32).toString('hex'), sub: 'echo', rtw: { serve: ['echo'] } }] }))
      gw = await startGateway({ apiKeysFile: keys })
      const h = startClient(gw.mqttUrl, { username: 'echo', password: 'not-a-key' })
      await waitFor(() => h.log.filter(l => /connection refused/.test(l)).length >= 2, { what: 'two refused attempts' })
      expect(h.log.find(l => /connection refused/.test(l))).toMatch(/bad user name or password|not authorized/)
      expect(h.subscribed).toEqual([])
      // The same port, now without authentication: the next attempt is accepted.
      const mqttPort = gw.mqttPort
      await gw.close()
      gw = await startGateway({ mqttPort })
      await subscribedOn(gw)
      expect((await call(gw, 'accepted')).status).toBe(200)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('reports a filter the broker refuses (0x80) and keeps the others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtw-echo-client-'))
    try {
      const key = randomBytes(32).toString('hex')
      const keys = join(dir, 'keys.json')
      writeFileSync(keys, JSON.stringify({ keys: [{ key, sub: 'echo', rtw: { serve: ['echo'] } }] }))
      gw = await startGateway({ apiKeysFile: keys })
      const h = startClient(gw.mqttUrl, { username: 'echo', password: key })
      await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
      // The SUBACKs may come back in either order.
      expect(h.subscribed).toContainEqual({ filter: '$req/echo/#', granted: true })
      expect(h.subscribed).toContainEqual({ filter: '$req/realtimeweb/#', granted: false })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('tells the first failed connect of an outage once, not once per retry', async () => {
    // A port that takes connections and drops them at once: every retry is seen, none succeeds.
    let attempts = 0
    const dropper = createServer(socket => { attempts++; socket.destroy() })
    await new Promise<void>(resolve => dropper.listen(0, '127.0.0.1', resolve))
    try {
      const port = (dropper.address() as { port: number }).port
      const h = startClient(`mqtt://127.0.0.1:${port}`, { reconnectPeriodMs: 10 })
      await waitFor(() => attempts >= 5, { what: 'five connect attempts' })
      // The drop reads as a plain close or as a reset, as the kernel's timing has it.
      const told = h.log.filter(l => /reconnecting/.test(l))
      expect(told).toHaveLength(1)
      expect(told[0]).toMatch(new RegExp(`^(connection closed|read ECONNRESET|write EPIPE|write ECONNRESET); reconnecting to 127\\.0\\.0\\.1:${port} every 10 ms$`))
      expect(h.log).toHaveLength(1)
    } finally {
      await new Promise<void>(resolve => dropper.close(() => resolve()))
    }
  })

  it('end() sends DISCONNECT: the broker drops the subscriptions and the client stays down', async () => {
    gw = await startGateway()
    const h = startClient(gw.mqttUrl)
    await subscribedOn(gw)
    let disconnected = false
    gw.app.broker.aedes.on('clientDisconnect', c => { if (c.id === h.clientId) disconnected = true })
    await h.client.end()
    await waitFor(() => disconnected && !gw.app.broker.subscriptions.hasMatch('$req/echo/x'), { what: 'the broker to drop the client' })
    expect(h.client.isConnected).toBe(false)
    expect(h.log.some(l => /reconnecting/.test(l))).toBe(false)
  })
})

/** A broker played by the test: every packet each connection sends, and a way to answer. */
class ScriptedBroker {
  readonly conns: Array<{ socket: Socket, packets: Packet[] }> = []
  private constructor (private readonly server: Server, readonly port: number) {}

  static async start (onPacket: (b: ScriptedBroker, socket: Socket, p: Packet) => void): Promise<ScriptedBroker> {
    const box: { broker?: ScriptedBroker } = {}
    const server = createServer(socket => {
      const conn = { socket, packets: [] as Packet[] }
      box.broker?.conns.push(conn)
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      parser.on('packet', (p: Packet) => {
        conn.packets.push(p)
        if (box.broker !== undefined) onPacket(box.broker, socket, p)
      })
      socket.on('data', (c: Buffer) => parser.parse(c))
      socket.on('error', () => {})
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const addr = server.address()
    box.broker = new ScriptedBroker(server, typeof addr === 'object' && addr !== null ? addr.port : 0)
    return box.broker
  }

  static send (socket: Socket, ...packets: Packet[]): void {
    // One write, so the client reads them together.
    socket.write(Buffer.concat(packets.map(p => mqttPacket.generate(p))))
  }

  async close (): Promise<void> {
    for (const c of this.conns) c.socket.destroy()
    await new Promise(resolve => this.server.close(resolve))
  }
}

/** Answers CONNECT and SUBSCRIBE like a broker; nothing else. */
function handshake (_b: ScriptedBroker, socket: Socket, p: Packet): void {
  if (p.cmd === 'connect') ScriptedBroker.send(socket, { cmd: 'connack', returnCode: 0, sessionPresent: false })
  if (p.cmd === 'subscribe') ScriptedBroker.send(socket, { cmd: 'suback', messageId: p.messageId as number, granted: [1] })
}

describe('on the wire (a scripted broker)', () => {
  let broker: ScriptedBroker | undefined
  afterEach(async () => {
    await broker?.close()
    broker = undefined
  })

  it('sends CONNECT 3.1.1 with clean session, keepalive and credentials', async () => {
    broker = await ScriptedBroker.start(handshake)
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`, { username: 'echo', password: 'tok' })
    await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
    const connect = broker.conns[0]?.packets[0]
    expect(connect).toMatchObject({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: h.clientId, username: 'echo' })
    expect(String((connect as { password?: Buffer }).password)).toBe('tok')
    const subs = broker.conns[0]?.packets.filter(p => p.cmd === 'subscribe')
    expect(subs?.map(p => p.cmd === 'subscribe' && p.subscriptions)).toEqual(FILTERS.map(topic => [{ topic, qos: 1 }]))
  })

  it('acknowledges QoS 1 and 2 deliveries, and numbers QoS 1 replies 1.., never 0', async () => {
    broker = await ScriptedBroker.start(handshake)
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`, { replyQos: 1 })
    await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
    const socket = broker.conns[0]?.socket as Socket
    const req = (n: number, qos: 1 | 2): Packet => ({ cmd: 'publish', topic: `$req/echo/${n}`, payload: `raw ${n}`, qos, messageId: 100 + n, retain: false, dup: false })
    ScriptedBroker.send(socket, req(1, 1), req(2, 1), req(3, 2))
    const packets = (): Packet[] => broker?.conns[0]?.packets ?? []
    await waitFor(() => packets().filter(p => p.cmd === 'publish').length === 3, { what: 'three replies' })
    expect(packets().filter(p => p.cmd === 'puback').map(p => p.messageId)).toEqual([101, 102])
    expect(packets().filter(p => p.cmd === 'pubrec').map(p => p.messageId)).toEqual([103])
    ScriptedBroker.send(socket, { cmd: 'pubrel', messageId: 103 })
    await waitFor(() => packets().some(p => p.cmd === 'pubcomp'), { what: 'PUBCOMP' })
    expect(packets().find(p => p.cmd === 'pubcomp')?.messageId).toBe(103)
    const replies = packets().filter(p => p.cmd === 'publish')
    expect(replies.map(p => p.cmd === 'publish' && [p.topic, p.qos, String(p.payload)])).toEqual([
      ['$res/echo/1', 1, 'raw 1'], ['$res/echo/2', 1, 'raw 2'], ['$res/echo/3', 1, 'raw 3']
    ])
    // The two SUBSCRIBEs took ids 1 and 2; the replies go on from there.
    expect(replies.map(p => p.messageId)).toEqual([3, 4, 5])
    // PUBACKs for the replies need nothing kept: they are simply accepted.
    ScriptedBroker.send(socket, { cmd: 'puback', messageId: 3 }, { cmd: 'puback', messageId: 4 }, { cmd: 'puback', messageId: 99 })
    ScriptedBroker.send(socket, req(4, 1))
    await waitFor(() => packets().filter(p => p.cmd === 'publish').length === 4, { what: 'a reply after the PUBACKs' })
    expect(h.client.isConnected).toBe(true)
  })

  it('sends the replies to one read of requests in one write', async () => {
    broker = await ScriptedBroker.start(handshake)
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`)
    await waitFor(() => h.subscribed.length === 2, { what: 'two SUBACKs' })
    const socket = broker.conns[0]?.socket as Socket
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    const reqs: Packet[] = Array.from({ length: 50 }, (_, i) => ({ cmd: 'publish', topic: `$req/echo/${i}`, payload: `r${i}`, qos: 1, messageId: i + 1, retain: false, dup: false }))
    ScriptedBroker.send(socket, ...reqs)
    await waitFor(() => (broker?.conns[0]?.packets.filter(p => p.cmd === 'publish').length ?? 0) === 50, { what: '50 replies' })
    // 50 PUBACKs and 50 replies, written together (loopback delivers one write as one read here).
    expect(h.messages).toHaveLength(50)
    expect(chunks.length).toBeLessThanOrEqual(2)
  })

  it('sends PINGREQ when idle and gives up on a connection whose broker never answers it', async () => {
    broker = await ScriptedBroker.start(handshake)
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`, { keepalive: 1 })
    await waitFor(() => broker?.conns[0]?.packets.some(p => p.cmd === 'pingreq'), { what: 'a PINGREQ' })
    expect(broker.conns[0]?.packets[0]).toMatchObject({ cmd: 'connect', keepalive: 1 })
    await waitFor(() => (broker?.conns.length ?? 0) >= 2 && h.subscribed.length >= 4, { what: 'a new connection after the missing PINGRESP' })
    expect(h.log).toContain('no PINGRESP from the broker')
  })

  it('keeps a connection whose broker answers PINGREQ', async () => {
    broker = await ScriptedBroker.start((b, socket, p) => {
      handshake(b, socket, p)
      if (p.cmd === 'pingreq') ScriptedBroker.send(socket, { cmd: 'pingresp' })
    })
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`, { keepalive: 1 })
    // Three PINGREQs answered in turn span well over the 1.5 s an unanswered one would last.
    await waitFor(() => (broker?.conns[0]?.packets.filter(p => p.cmd === 'pingreq').length ?? 0) >= 3, { what: 'three PINGREQs', timeoutMs: 10_000 })
    expect(broker.conns).toHaveLength(1)
    expect(h.client.isConnected).toBe(true)
  })

  it('gives up an attempt without a CONNACK and tries again', async () => {
    broker = await ScriptedBroker.start(() => {})
    const h = startClient(`mqtt://127.0.0.1:${broker.port}`, { connectTimeoutMs: 200 })
    await waitFor(() => (broker?.conns.length ?? 0) >= 2, { what: 'a second attempt' })
    expect(h.log).toContain('no CONNACK within 200 ms')
  })
})
