// Hostile input, tested against the MQTT 3.1.1 normative statements (not
// against what Aedes happens to do) and against the REST rules of PROTOCOL.md.
// Every case ends with the gateway still serving a well-behaved client.
import { connect as netConnect } from 'node:net'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, recordMessages, subscribe, type Received } from '../helpers/mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { rawRequest } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import {
  connectPacket, generate, publishPacket, rawConnect, rawFilterSubscribe, rawTopicPublish, remainingLength, subscribePacket,
  type RawClient
} from '../helpers/raw-mqtt.js'
import { buildApp } from '../../gateway/app.js'
import { loadConfig } from '../../gateway/config.js'

interface ErrorJson { error: { code: string, message: string } }

let gw: TestGateway
let echo: Responder
let watcher: MqttClient
let seen: Received[]

beforeAll(async () => {
  gw = await startGateway({ connectRate: 10_000 })
  echo = await startEcho(gw.mqttUrl)
  // Subscribed to everything a hostile client might smuggle through.
  watcher = await connectClient(gw.mqttUrl, { clientId: 'watcher' })
  await subscribe(watcher, ['#', '$SYS/#'], 0)
  seen = recordMessages(watcher)
})
afterAll(async () => {
  await watcher?.endAsync()
  await echo?.close()
  await gw?.close()
})

/** The gateway still answers a REST echo and an MQTT round trip. */
async function stillServing (): Promise<void> {
  const res = await fetch(`${gw.httpUrl}/api/echo/alive`, { method: 'POST', body: 'ping' })
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('ping')
  const c = await connectClient(gw.mqttUrl)
  try {
    await subscribe(c, 'alive/check')
    const got = recordMessages(c)
    await c.publishAsync('alive/check', 'x', { qos: 1 })
    await waitFor(() => got.length === 1, { what: 'the MQTT round trip' })
  } finally {
    await c.endAsync()
  }
}

/** Sends bytes on a fresh connection (after CONNECT when clientId is given) and expects the gateway to close it. */
async function expectClose (bytes: Buffer, clientId?: string): Promise<RawClient> {
  const c = await rawConnect(gw.mqttPort, clientId)
  c.send(bytes)
  expect(await c.closedWithin(5_000)).toBe(true)
  return c
}

describe('malformed MQTT packets close the connection [MQTT-4.8.0-1]', () => {
  it('a first packet that is not CONNECT [MQTT-3.1.0-1]', async () => {
    await expectClose(subscribePacket(['a']))
    await expectClose(Buffer.from([0xc0, 0x00])) // PINGREQ
  })

  it('a second CONNECT [MQTT-3.1.0-2]', async () => {
    await expectClose(connectPacket('again'), 'twice')
  })

  it('reserved fixed-header flags [MQTT-2.2.2-2]: SUBSCRIBE, UNSUBSCRIBE and PUBREL without 0010', async () => {
    const sub = subscribePacket(['a'])
    sub[0] = 0x80
    await expectClose(sub, 'flags-1')
    const unsub = generate({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a'] })
    unsub[0] = 0xa0
    await expectClose(unsub, 'flags-2')
    await expectClose(Buffer.from([0x60, 0x02, 0x00, 0x01]), 'flags-3')
  })

  it('a PUBLISH with both QoS bits set [MQTT-3.3.1-4]', async () => {
    const p = publishPacket('q/3', 'x', 1, 5)
    p[0] = 0x36
    await expectClose(p, 'qos-3')
  })

  it('reserved packet types 0 and 15', async () => {
    await expectClose(Buffer.from([0x00, 0x00]), 'type-0')
    await expectClose(Buffer.from([0xf0, 0x00]), 'type-15')
  })

  it('a CONNECT with the reserved flag set [MQTT-3.1.2-3], or with a Will QoS of 3 [MQTT-3.1.2-14]', async () => {
    const reserved = connectPacket('reserved')
    reserved[9] = (reserved[9] as number) | 0x01 // the Connect Flags byte: fixed header 2, name 6, level 1
    const c = await expectClose(reserved)
    expect(c.packets).toHaveLength(0)
    const willQos = connectPacket('will-qos', { will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false } })
    willQos[9] = (willQos[9] as number) | 0x18
    expect((await expectClose(willQos)).packets).toHaveLength(0)
  })

  it('a CONNECT with a password but no user name [MQTT-3.1.2-22]', async () => {
    // mqtt-packet will not generate it, so flip the password flag on a CONNECT without credentials.
    const p = Buffer.concat([connectPacket('pw'), Buffer.from([0x00, 0x01, 0x78])])
    p[1] = (p[1] as number) + 3
    p[9] = (p[9] as number) | 0x40
    const c = await expectClose(p)
    expect(c.packets.some(x => x.cmd === 'connack')).toBe(false)
  })

  it('an unsupported protocol level gets CONNACK 0x01 and then the close [MQTT-3.1.2-2]', async () => {
    for (const level of [2, 6, 200]) {
      const p = connectPacket(`level-${level}`)
      p[8] = level
      const c = await expectClose(p)
      expect(c.packets).toMatchObject([{ cmd: 'connack', returnCode: 1 }])
    }
  })

  it('an empty ClientId with CleanSession 0 gets CONNACK 0x02 and then the close [MQTT-3.1.3-8]', async () => {
    // mqtt-packet will not generate it: clear CleanSession on an empty-id CONNECT.
    const p = connectPacket('')
    p[9] = (p[9] as number) & ~0x02
    const c = await expectClose(p)
    expect(c.packets).toMatchObject([{ cmd: 'connack', returnCode: 2 }])
  })

  it('a SUBSCRIBE without filters [MQTT-3.8.3-3], with a requested QoS of 3 [MQTT-3-8.3-4], or an invalid filter [MQTT-4.7.1-2]', async () => {
    await expectClose(Buffer.from([0x82, 0x02, 0x00, 0x01]), 'nofilter')
    const q3 = subscribePacket(['a'])
    q3[q3.length - 1] = 0x03
    await expectClose(q3, 'subqos3')
    await expectClose(subscribePacket(['a/#/b']), 'badfilter-1')
    await expectClose(subscribePacket(['a+']), 'badfilter-2')
    await expectClose(subscribePacket(['x+/y']), 'badfilter-3')
    await expectClose(subscribePacket(['a/b#']), 'badfilter-4')
  })

  it('an UNSUBSCRIBE without filters [MQTT-3.10.3-2], or with an invalid filter [MQTT-4.7.1-3]', async () => {
    await expectClose(Buffer.from([0xa2, 0x02, 0x00, 0x01]), 'nounsub')
    await expectClose(generate({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a+'] }), 'badunsub')
  })

  it('a PUBLISH whose QoS 1 Packet Identifier is 0 [MQTT-2.3.1-1]', async () => {
    const c = await expectClose(publishPacket('id/zero', 'x', 1, 0), 'id-zero')
    expect(c.packets.some(p => p.cmd === 'puback')).toBe(false)
  })

  it('a string length running past the packet', async () => {
    // PUBLISH, remaining length 5, topic length 200.
    await expectClose(Buffer.from([0x30, 0x05, 0x00, 0xc8, 0x61, 0x62, 0x63]), 'strlen')
  })

  it('an empty topic name [MQTT-4.7.3-1]', async () => {
    await expectClose(publishPacket('', 'x'), 'emptytopic')
  })

  it('leaves the gateway serving', stillServing)
})

describe('truncated and oversized frames', () => {
  it('a Remaining Length longer than 4 bytes closes at once [MQTT-2.2.3]', async () => {
    await expectClose(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 'varint')
  })

  it('a truncated packet is held until the rest arrives, then processed', async () => {
    const c = await rawConnect(gw.mqttPort, 'split')
    const p = publishPacket('split/topic', 'whole', 1, 9)
    for (let i = 0; i < p.length; i++) c.send(p.subarray(i, i + 1))
    await c.next('puback')
    await waitFor(() => seen.some(m => m.topic === 'split/topic' && m.payload.toString() === 'whole'))
    c.destroy()
  })

  it('a client that never completes its packet is closed by its keepalive [MQTT-3.1.2-24]', async () => {
    const c = await rawConnect(gw.mqttPort)
    c.send(connectPacket('half', { keepalive: 1 }))
    await c.next('connack')
    c.send(publishPacket('half/topic', 'x'.repeat(100)).subarray(0, 20))
    expect(await c.closedWithin(5_000)).toBe(true)
    expect(seen.some(m => m.topic === 'half/topic')).toBe(false)
  })

  it('a truncated CONNECT is closed after the connect timeout (10 s)', async () => {
    const c = await rawConnect(gw.mqttPort)
    c.send(connectPacket('slow-connect').subarray(0, 8))
    expect(await c.closedWithin(15_000)).toBe(true)
  }, 20_000)

  it('an oversized frame (over maxPacketSize) closes at its header', async () => {
    await expectClose(Buffer.concat([Buffer.from([0x30]), remainingLength(gw.config.maxPacketSize + 1)]), 'oversize')
  })

  it('leaves the gateway serving', stillServing)
})

describe('ill-formed UTF-8 and U+0000 close the connection [MQTT-1.5.3-1], [MQTT-1.5.3-2]', () => {
  const bad: Array<[string, Buffer]> = [
    ['U+0000', Buffer.from('a/\u0000/b')],
    ['an overlong "/"', Buffer.from([0x61, 0xc0, 0xaf, 0x62])],
    ['a UTF-16 surrogate (U+D800)', Buffer.from([0x61, 0xed, 0xa0, 0x80])],
    ['a truncated sequence', Buffer.from([0x61, 0xe2, 0x82])],
    ['a lone continuation byte', Buffer.from([0x61, 0x80])],
    ['an invalid byte (0xFF)', Buffer.from([0x61, 0xff])]
  ]

  it.each(bad)('in a PUBLISH topic: %s', async (_what, topic) => {
    const before = seen.length
    const c = await rawConnect(gw.mqttPort, 'utf8-pub')
    c.send(rawTopicPublish(topic))
    expect(await c.closedWithin()).toBe(true)
    // Delivery order is per connection, so a later marker proves nothing was routed.
    await watcher.publishAsync('utf8/marker', 'm', { qos: 1 })
    await waitFor(() => seen.slice(before).some(m => m.topic === 'utf8/marker'))
    expect(seen.slice(before).map(m => m.topic).filter(t => !t.startsWith('$SYS/'))).toEqual(['utf8/marker'])
  })

  it.each(bad)('in a SUBSCRIBE filter: %s (closed, not SUBACK 0x80)', async (_what, filter) => {
    const c = await rawConnect(gw.mqttPort, 'utf8-sub')
    c.send(rawFilterSubscribe(filter))
    expect(await c.closedWithin()).toBe(true)
    expect(c.packets.some(p => p.cmd === 'suback')).toBe(false)
  })

  it('in an UNSUBSCRIBE filter', async () => {
    const c = await rawConnect(gw.mqttPort, 'utf8-unsub')
    const filter = Buffer.from([0x61, 0x00])
    const body = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, filter.length]), filter])
    c.send(Buffer.concat([Buffer.from([0xa2, body.length]), body]))
    expect(await c.closedWithin()).toBe(true)
  })

  it('in a CONNECT client id, user name or Will Topic: closed without CONNACK', async () => {
    const id = Buffer.from(connectPacket('idXX'))
    id.write('\u0000\u0000', 14, 'latin1') // the client id follows the 2-byte length at offset 12
    expect((await expectClose(id)).packets).toHaveLength(0)
    expect((await expectClose(connectPacket('user', { username: 'a\u0000b', password: Buffer.from('p') }))).packets).toHaveLength(0)
    expect((await expectClose(connectPacket('will', { will: { topic: 'w/\u0000', payload: Buffer.from('x'), qos: 0, retain: false } }))).packets).toHaveLength(0)
  })

  it('well-formed multi-byte UTF-8 is accepted', async () => {
    const c = await rawConnect(gw.mqttPort, 'utf8-ok')
    c.send(rawTopicPublish(Buffer.from('ünï/日本/🙂')))
    await waitFor(() => seen.some(m => m.topic === 'ünï/日本/🙂'))
    expect(c.closed).toBe(false)
    c.destroy()
  })

  it('leaves the gateway serving', stillServing)
})

describe('wildcards in a PUBLISH topic close the connection [MQTT-3.3.2-2]', () => {
  it.each(['a/+', 'a/#', '#', '+', 'a+b'])('%s', async topic => {
    const c = await expectClose(publishPacket(topic, 'x', 1, 3), 'wild')
    expect(c.packets.some(p => p.cmd === 'puback')).toBe(false)
  })

  it('and are 400 RTW_BAD_TOPIC over HTTP', async () => {
    const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'a/+/b', payload: 'x' }) })
    expect(res.status).toBe(400)
    expect((await res.json() as ErrorJson).error.code).toBe('RTW_BAD_TOPIC')
  })

  it('nothing reached the "#" subscriber', () => {
    expect(seen.filter(m => m.topic.includes('+') || m.topic.includes('#'))).toEqual([])
  })
})

describe('$ topics', () => {
  it('a client PUBLISH to $SYS/… closes the connection (the broker\'s own topics)', async () => {
    await expectClose(publishPacket('$SYS/fake', 'x', 1, 4), 'sys')
    expect(seen.some(m => m.topic === '$SYS/fake')).toBe(false)
  })

  it('a subscription to $res/# or someone else\'s inbox gets 0x80 and the connection stays [P-1.6]', async () => {
    const c = await rawConnect(gw.mqttPort, 'snoop')
    c.send(subscribePacket(['$res/#', '$inbox/watcher/#', '$inbox/snoop/#']))
    expect(await c.next('suback')).toMatchObject({ granted: [128, 128, 0] })
    expect(c.closed).toBe(false)
    c.destroy()
  })
})

describe('REST service and path segments: $, traversal, %2F and NUL are 400 RTW_BAD_TARGET [P-1.3]', () => {
  const paths = [
    '/api/$SYS/x', '/api/%24SYS/x', '/api/echo/$res/x', '/api/echo/%24inbox', '/api/echo/../x', '/api/echo/%2e%2e/x',
    '/api/echo/./x', '/api/echo/a%2Fb', '/api/echo/a%2fb', '/api/echo%2Fx', '/api/echo/%00', '/api/echo/a%00b',
    '/api/echo//x', '/api/echo/+', '/api/echo/%23', '/api/echo/%2B/x', '/api/..%2F..%2Fetc%2Fpasswd', '/api/echo/%ZZ',
    '/api/echo/%C0%AF', '/api/' + 'x'.repeat(65)
  ]
  it.each(paths)('%s', async path => {
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path, body: 'x' })
    expect(res.status, res.body.toString()).toBe(400)
    expect(['RTW_BAD_TARGET', 'RTW_BAD_REQUEST']).toContain(res.json().error.code)
  })

  it('while percent-encoded ordinary characters decode per level', async () => {
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/ech%6F/caf%C3%A9', body: 'ok' })
    expect(res.status).toBe(200)
    expect(decodeURIComponent(String(res.headers['x-echo-path']))).toBe('/café')
  })

  it('and /publish and /retained refuse reserved $ topics', async () => {
    for (const topic of ['$req/echo/x', '$res/echo/x', '$inbox/a/b', '$SYS/x']) {
      const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic, payload: 'x' }) })
      expect(res.status).toBe(400)
    }
    const r = await rawRequest({ port: gw.httpPort, path: '/retained/a%00b' })
    expect(r.status).toBe(400)
  })
})

describe('huge and broken HTTP requests', () => {
  it('headers over 16 KiB get 431 RTW_HEADERS_TOO_LARGE and a closed connection', async () => {
    const res = await rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(res.head).toMatch(/^HTTP\/1.1 431 /)
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'RTW_HEADERS_TOO_LARGE' } })
    expect(res.closed).toBe(true)
  })

  it('a request line over 16 KiB gets 431 too', async () => {
    const res = await rawHttp(`GET /api/echo/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(res.head).toMatch(/^HTTP\/1.1 431 /)
  })

  it('many headers under the limit are fine', async () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 50; i++) headers[`x-h${i}`] = 'v'.repeat(100)
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/h', headers, body: 'ok' })
    expect(res.status).toBe(200)
  })

  it('an unparsable request gets 400 RTW_BAD_REQUEST in the gateway\'s error shape', async () => {
    for (const raw of ['GARBAGE\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 'GET /\x01 HTTP/1.1\r\n\r\n']) {
      const res = await rawHttp(raw)
      expect(res.head, JSON.stringify(raw)).toMatch(/^HTTP\/1.1 400 /)
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'RTW_BAD_REQUEST' } })
    }
  })

  it('leaves the gateway serving', stillServing)
})

describe('invalid JSON envelopes', () => {
  it('an MQTT caller\'s undecodable envelope with a usable id and replyTo gets 400 in its inbox [P-4.5]', async () => {
    const c = await connectClient(gw.mqttUrl, { clientId: 'env-caller' })
    try {
      await subscribe(c, '$inbox/env-caller/#')
      const inbox = recordMessages(c)
      await c.publishAsync('$req/echo/x', JSON.stringify({ id: '1', replyTo: '$inbox/env-caller/r', timeout: 'soon' }), { qos: 1 })
      await c.publishAsync('$req/echo/x', '{not json', { qos: 1 })
      await c.publishAsync('$req/echo/x', JSON.stringify({ id: '2', replyTo: '$inbox/env-caller/r' }), { qos: 1 })
      await waitFor(() => inbox.length === 2, { what: 'two answers' })
      const replies = inbox.map(m => JSON.parse(m.payload.toString()) as { id: string, status: number })
      expect(replies.find(r => r.id === '1')?.status).toBe(400)
      expect(replies.find(r => r.id === '2')?.status).toBe(200)
    } finally {
      await c.endAsync()
    }
  })

  it('a responder\'s undecodable reply is 502 RTW_BAD_REPLY for the REST caller [P-3.7]', async () => {
    const bad = await Responder.start(gw.mqttUrl, '$req/garbled/#', (req, r) => { void r.publish(req.env.replyTo, '{"id": oops') })
    try {
      const res = await fetch(`${gw.httpUrl}/api/garbled/x`, { method: 'POST', body: 'x' })
      expect(res.status).toBe(502)
      expect((await res.json() as ErrorJson).error.code).toBe('RTW_BAD_REPLY')
    } finally {
      await bad.close()
    }
  })

  it('a /publish body that is not JSON is 400 RTW_BAD_JSON', async () => {
    const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: '{"topic": ' })
    expect(res.status).toBe(400)
    expect((await res.json() as ErrorJson).error.code).toBe('RTW_BAD_JSON')
  })
})

describe('connection floods', () => {
  it('hundreds of sockets that connect and vanish, or never send CONNECT, leave the gateway serving and are all released', async () => {
    const baseline = gw.app.broker.aedes.connectedClients
    const idle = await Promise.all(Array.from({ length: 200 }, async () => await rawConnect(gw.mqttPort)))
    const churn = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const c = await rawConnect(gw.mqttPort)
      c.send(connectPacket(`churn-${i}`))
      return c
    }))
    await stillServing()
    for (const c of churn) c.destroy()
    for (const c of idle) c.destroy()
    await waitFor(() => gw.app.broker.aedes.connectedClients === baseline, { what: 'every flood connection released' })
    await stillServing()
  })
})

describe('logging is rate-limited', () => {
  it('a thousand bad connections produce a bounded number of log lines', async () => {
    let lines = 0
    const stream = new Writable({ write (_chunk, _enc, cb) { lines++; cb() } })
    const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, connectRate: 100_000 } })
    const app = await buildApp(config, { logger: { level: 'warn', stream } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = await app.broker.listenTcp(0, '127.0.0.1')
    try {
      const start = lines
      const kinds = [
        (): Buffer => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
        (): Buffer => rawTopicPublish(Buffer.from([0x61, 0xff])),
        (): Buffer => publishPacket('a/#', 'x'),
        (): Buffer => Buffer.from([0xf0, 0x00])
      ]
      for (let round = 0; round < 10; round++) {
        await Promise.all(Array.from({ length: 100 }, async (_, i) => {
          const s = netConnect({ port, host: '127.0.0.1' })
          s.on('error', () => {})
          await new Promise<void>(resolve => s.once('connect', () => resolve()))
          s.write(Buffer.concat([connectPacket(`log-${round}-${i}`), (kinds[i % kinds.length] as () => Buffer)()]))
          await new Promise<void>(resolve => { s.once('close', () => resolve()); s.resume() })
        }))
      }
      // At most 10 lines per kind of event per 10 s window, whatever the flood.
      expect(lines - start).toBeLessThanOrEqual(80)
    } finally {
      await app.close()
    }
  })
})

interface RawHttpAnswer { head: string, body: string, closed: boolean }

/** Writes raw bytes to the HTTP port and reads the answer until the gateway closes the connection. */
async function rawHttp (raw: string): Promise<RawHttpAnswer> {
  return await new Promise((resolve, reject) => {
    const s = netConnect({ port: gw.httpPort, host: '127.0.0.1' })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no answer within 5 s')) }, 5_000)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      resolve({ head: split === -1 ? text : text.slice(0, split), body: split === -1 ? '' : text.slice(split + 4), closed: true })
    })
    s.write(raw)
  })
}
