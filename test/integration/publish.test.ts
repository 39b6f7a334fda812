// Live updates from HTTP (POST /publish, GET /retained/…) and MQTT over WebSocket.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { rawRequest } from '../helpers/http.js'

describe('HTTP publish and retained reads', () => {
  let gw: TestGateway

  beforeAll(async () => {
    gw = await startGateway()
  })
  afterAll(async () => {
    await gw?.close()
  })

  const publish = async (body: unknown): Promise<Response> => await fetch(`${gw.httpUrl}/publish`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' }
  })

  it('answers 200 {delivered:true} and delivers when someone is subscribed', async () => {
    const sub = await connectClient(gw.mqttUrl)
    try {
      await subscribe(sub, 'live/+/temp')
      const got = nextMessage(sub)
      const res = await publish({ topic: 'live/kitchen/temp', payload: '21.5', qos: 1 })
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ delivered: true })
      const msg = await got
      expect(msg.topic).toBe('live/kitchen/temp')
      expect(msg.payload.toString()).toBe('21.5')
    } finally {
      await sub.endAsync()
    }
  })

  it('answers 202 {delivered:false} when nobody is subscribed', async () => {
    const res = await publish({ topic: 'live/nobody/listens', payload: 'x' })
    expect(res.status).toBe(202)
    expect(await res.json()).toEqual({ delivered: false, reason: 'no_matching_subscribers' })
  })

  it('sends a JSON payload value as its JSON text, and a base64 payload as its bytes', async () => {
    const sub = await connectClient(gw.mqttUrl)
    try {
      await subscribe(sub, 'enc/#')
      const first = nextMessage(sub, t => t === 'enc/json')
      await publish({ topic: 'enc/json', payload: { a: 1, b: [true, null] } })
      expect((await first).payload.toString()).toBe('{"a":1,"b":[true,null]}')

      const bytes = Buffer.concat([Buffer.from([0xff, 0x00]), randomBytes(300)])
      const second = nextMessage(sub, t => t === 'enc/bin')
      await publish({ topic: 'enc/bin', payload: bytes.toString('base64'), encoding: 'base64' })
      expect((await second).payload.equals(bytes)).toBe(true)
    } finally {
      await sub.endAsync()
    }
  })

  it('stores a retained message even with nobody subscribed, and GET /retained returns it', async () => {
    const res = await publish({ topic: 'state/lamp 1/on', payload: { on: true }, retain: true, qos: 1 })
    expect(res.status).toBe(202)
    const read = await fetch(`${gw.httpUrl}/retained/state/lamp%201/on`)
    expect(read.status).toBe(200)
    expect(read.headers.get('content-type')).toMatch(/^application\/json/)
    expect(read.headers.get('x-mqtt-qos')).toBe('1')
    expect(await read.json()).toEqual({ on: true })

    // A later subscriber gets it as retained.
    const sub = await connectClient(gw.mqttUrl)
    try {
      const got = nextMessage(sub)
      await subscribe(sub, 'state/#')
      const msg = await got
      expect(msg.retain).toBe(true)
      expect(msg.payload.toString()).toBe('{"on":true}')
    } finally {
      await sub.endAsync()
    }
  })

  it('reads back text and binary retained payloads with a fitting content type', async () => {
    await publish({ topic: 'state/text', payload: 'plain words', retain: true })
    const t = await fetch(`${gw.httpUrl}/retained/state/text`)
    expect(t.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await t.text()).toBe('plain words')

    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x01])
    await publish({ topic: 'state/bin', payload: bytes.toString('base64'), encoding: 'base64', retain: true })
    const b = await fetch(`${gw.httpUrl}/retained/state/bin`)
    expect(b.headers.get('content-type')).toBe('application/octet-stream')
    expect(Buffer.from(await b.arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('clears a retained message with an empty retained publish', async () => {
    await publish({ topic: 'state/clear-me', payload: 'v', retain: true })
    expect((await fetch(`${gw.httpUrl}/retained/state/clear-me`)).status).toBe(200)
    await publish({ topic: 'state/clear-me', payload: '', retain: true })
    const res = await fetch(`${gw.httpUrl}/retained/state/clear-me`)
    expect(res.status).toBe(404)
  })

  it('answers 404 RTW_NO_RETAINED for a topic with no retained message', async () => {
    const res = await fetch(`${gw.httpUrl}/retained/state/never/set`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: { code: 'RTW_NO_RETAINED' } })
  })

  it.each([
    ['a "+" wildcard', 'a/+/b'],
    ['a "#" wildcard', 'a/#'],
    ['an empty topic', ''],
    ['a NUL', 'a\u0000b'],
    ['$req', '$req/echo/x'],
    ['$res', '$res/echo/$rid/1'],
    ['$inbox', '$inbox/someone/r'],
    ['$SYS', '$SYS/broker/uptime'],
    ['a non-string topic', 42]
  ])('refuses a topic with %s: 400 RTW_BAD_TOPIC', async (_what, topic) => {
    const res = await publish({ topic, payload: 'x' })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { code: 'RTW_BAD_TOPIC' } })
  })

  it.each(['{"topic": "a", ', 'not json', ''])('refuses a body that is not JSON (%j): 400 RTW_BAD_JSON', async body => {
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/publish', body, headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(400)
    expect(res.json().error.code).toBe('RTW_BAD_JSON')
  })

  it.each([
    ['qos 2', { topic: 't', payload: 'x', qos: 2 }],
    ['an unknown encoding', { topic: 't', payload: 'x', encoding: 'hex' }],
    ['a non-boolean retain', { topic: 't', payload: 'x', retain: 'yes' }],
    ['a JSON array', [1, 2]]
  ])('refuses %s: 400 RTW_BAD_REQUEST', async (_what, body) => {
    const res = await publish(body)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { code: 'RTW_BAD_REQUEST' } })
  })

  it.each(['/retained/a/%2B/b', '/retained/%24req/x', '/retained/a/%23'])('refuses GET %s: 400 RTW_BAD_TOPIC', async path => {
    const res = await rawRequest({ port: gw.httpPort, path })
    expect(res.status).toBe(400)
    expect(res.json().error.code).toBe('RTW_BAD_TOPIC')
  })
})

describe('MQTT over WebSocket', () => {
  let gw: TestGateway

  beforeAll(async () => {
    gw = await startGateway()
  })
  afterAll(async () => {
    await gw?.close()
  })

  it('carries publish and subscribe both ways between WebSocket and TCP clients', async () => {
    const ws = await connectClient(gw.wsUrl)
    const tcp = await connectClient(gw.mqttUrl)
    try {
      await subscribe(ws, 'room/+/chat')
      await subscribe(tcp, 'room/ws/#')
      const toWs = nextMessage(ws)
      await tcp.publishAsync('room/1/chat', 'hello from tcp', { qos: 1 })
      expect((await toWs).payload.toString()).toBe('hello from tcp')

      const bytes = randomBytes(100_000)
      const toTcp = nextMessage(tcp)
      await ws.publishAsync('room/ws/blob', bytes, { qos: 1 })
      expect((await toTcp).payload.equals(bytes)).toBe(true)
    } finally {
      await ws.endAsync()
      await tcp.endAsync()
    }
  })

  it('delivers POST /publish to a WebSocket subscriber', async () => {
    const ws = await connectClient(gw.wsUrl)
    try {
      await subscribe(ws, 'news')
      const got = nextMessage(ws)
      const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'news', payload: 'extra' }), headers: { 'content-type': 'application/json' } })
      expect(res.status).toBe(200)
      expect((await got).payload.toString()).toBe('extra')
    } finally {
      await ws.endAsync()
    }
  })

  it('negotiates the mqtt subprotocol and refuses upgrades on other paths', async () => {
    const ok = new WebSocket(gw.wsUrl, ['mqtt'])
    const protocol = await new Promise<string>((resolve, reject) => {
      ok.once('open', () => resolve(ok.protocol))
      ok.once('error', reject)
    })
    expect(protocol).toBe('mqtt')
    ok.terminate()

    const wrong = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/not-mqtt`, ['mqtt'])
    const status = await new Promise<number>((resolve, reject) => {
      wrong.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      wrong.once('open', () => reject(new Error('upgrade accepted on the wrong path')))
      wrong.once('error', () => resolve(-1))
    })
    expect(status).toBe(404)
  })
})
