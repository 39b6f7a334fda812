// The web client library in Node, through the `ws` transport, against a real
// in-process gateway: requests on both routes, errors, subscriptions,
// publishes, keepalive, the pending-request policy and reconnecting.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { WebSocketServer } from 'ws'
import type { AddressInfo } from 'node:net'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { HoldingResponder, nextEvent, nodeClient, rejection, startEchoResponder } from '../helpers/web-client.js'
import { GatewayError, type Message, type RealtimeClient } from '../../web-client/src/index.js'

const clients: RealtimeClient[] = []
function track (c: RealtimeClient): RealtimeClient {
  clients.push(c)
  return c
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})

/** Messages delivered to a handler, awaitable one by one. */
function collector (): { handler: (m: Message) => void, next: () => Promise<Message>, seen: Message[] } {
  const seen: Message[] = []
  let waiting: ((m: Message) => void) | undefined
  let read = 0
  return {
    seen,
    handler: m => {
      seen.push(m)
      if (waiting !== undefined) {
        const w = waiting
        waiting = undefined
        read++
        w(m)
      }
    },
    next: () => read < seen.length ? Promise.resolve(seen[read++] as Message) : new Promise(resolve => { waiting = resolve })
  }
}

describe('web client over ws against the gateway', () => {
  let gw: TestGateway
  let responder: MqttClient
  let hold: HoldingResponder
  let peer: MqttClient

  beforeAll(async () => {
    gw = await startGateway()
    responder = await startEchoResponder(gw.mqttUrl)
    hold = await HoldingResponder.start(gw.mqttUrl, 'hold')
    peer = await connectClient(gw.mqttUrl)
  })
  afterAll(async () => {
    await Promise.all([responder.endAsync(), hold.mqtt.endAsync(), peer.endAsync()])
    await gw.close()
  })

  it('queues a request made before the connection is up, then gets its reply', async () => {
    const client = track(nodeClient(gw.wsUrl))
    expect(client.state).toBe('connecting')
    const res = await client.request('echo', '/early', { body: 'first' })
    expect(res).toMatchObject({ status: 200, body: 'first', ok: true })
    expect(client.state).toBe('connected')
  })

  for (const via of ['mqtt', 'rest'] as const) {
    it(`round-trips text, JSON, binary and queries via ${via}`, async () => {
      const client = track(nodeClient(gw.wsUrl))
      const text = await client.request('echo', '/a/b', { method: 'POST', body: 'héllo', via })
      expect(text).toMatchObject({ status: 200, body: 'héllo' })
      expect(text.headers).toMatchObject({ 'content-type': 'text/plain; charset=utf-8', 'x-echo-method': 'POST', 'x-echo-path': '/a/b' })

      const json = await client.request('echo', 'items/7', { method: 'PUT', body: { n: 7, tags: ['x'] }, via })
      expect(json.headers['content-type']).toBe('application/json')
      expect(JSON.parse(json.body as string)).toEqual({ n: 7, tags: ['x'] })
      expect(json.headers['x-echo-path']).toBe('/items/7')

      const bytes = new Uint8Array([0, 0xff, 0xfe, 1, 2, 0x80])
      const bin = await client.request('echo', '/bin', { method: 'POST', body: bytes, via })
      expect(bin.body).toEqual(bytes)
      expect(bin.headers['content-type']).toBe('application/octet-stream')

      const get = await client.request('echo', '/q', { query: { a: '1', b: 'x y' }, headers: { 'X-Trace': 't1' }, via })
      expect(get.headers).toMatchObject({ 'x-echo-method': 'GET', 'x-echo-query': 'a=1&b=x+y' })
      expect(get.body).toBe('')
    })

    it(`rejects with the gateway's error code via ${via}`, async () => {
      const client = track(nodeClient(gw.wsUrl))
      const none = await rejection(client.request('nobody', '/x', { via }))
      expect(none).toMatchObject({ code: 'RTW_NO_RESPONDER', status: 404 })
      expect(none.response?.status).toBe(404)

      const bad = await rejection(client.request('bad$service', '/x', { via }))
      expect(bad).toMatchObject({ code: 'RTW_BAD_TARGET', status: 400 })

      const late = await rejection(client.request('hold', '/slow', { timeout: 300, via }))
      expect(late).toMatchObject({ code: 'RTW_REPLY_TIMEOUT', status: 504 })
      await hold.next(h => h.env.path === '/slow')
    })
  }

  it('refuses a wildcard target without losing the connection', async () => {
    const client = track(nodeClient(gw.wsUrl))
    await client.whenConnected()
    const bad = await rejection(client.request('echo', '/a/+/b'))
    expect(bad).toMatchObject({ code: 'RTW_BAD_TARGET', status: 400 })
    expect(client.state).toBe('connected')
    expect((await client.request('echo', '/after', { body: 'ok' })).body).toBe('ok')
  })

  it('rejects a GET with a body over REST instead of letting fetch throw', async () => {
    const client = track(nodeClient(gw.wsUrl))
    const err = await rejection(client.request('echo', '/x', { method: 'GET', body: 'x', via: 'rest' }))
    expect(err.code).toBe('RTW_CLIENT_INVALID_ARGUMENT')
  })

  it('subscribes, receives, and stops receiving after unsubscribing', async () => {
    const client = track(nodeClient(gw.wsUrl))
    const news = collector()
    const marker = collector()
    const sub = client.subscribe('news/+', news.handler)
    const markSub = client.subscribe('marker', marker.handler)
    await Promise.all([sub.ready, markSub.ready])

    peer.publish('news/a', 'first')
    const first = await news.next()
    expect(first).toMatchObject({ topic: 'news/a', text: 'first', retain: false })
    expect(first.payload).toEqual(new TextEncoder().encode('first'))

    const unsubscribed = new Promise<void>(resolve => gw.app.broker.aedes.once('unsubscribe', () => resolve()))
    sub()
    await unsubscribed
    // Ordered delivery from one publisher: once the marker arrives, news/b would have too.
    peer.publish('news/b', 'second')
    peer.publish('marker', 'm')
    await marker.next()
    expect(news.seen.map(m => m.topic)).toEqual(['news/a'])
  })

  it('gets a retained message on subscribing', async () => {
    await peer.publishAsync('state/lamp', 'on', { retain: true, qos: 1 })
    const client = track(nodeClient(gw.wsUrl))
    const got = collector()
    client.subscribe('state/#', got.handler)
    expect(await got.next()).toMatchObject({ topic: 'state/lamp', text: 'on', retain: true })
  })

  it('publishes at QoS 0 and 1, queued until connected', async () => {
    await subscribe(peer, 'from-client/#')
    const received: string[] = []
    const done = new Promise<void>(resolve => peer.on('message', (topic, payload) => {
      if (!topic.startsWith('from-client/')) return
      received.push(`${topic}=${payload.toString()}`)
      if (received.length === 3) resolve()
    }))
    const client = track(nodeClient(gw.wsUrl))
    const early = client.publish('from-client/early', 'queued')
    expect(client.state).toBe('connecting')
    await early
    await client.publish('from-client/q1', { qos: 1 }, { qos: 1 })
    await client.publish('from-client/bin', new Uint8Array([1, 2, 3]))
    await done
    expect(received).toEqual(['from-client/early=queued', 'from-client/q1={"qos":1}', 'from-client/bin=\u0001\u0002\u0003'])
  })

  it('refuses invalid topics and filters locally', async () => {
    const client = track(nodeClient(gw.wsUrl))
    expect((await rejection(client.publish('a/+', 'x'))).code).toBe('RTW_CLIENT_INVALID_ARGUMENT')
    expect(() => client.subscribe('a/#/b', () => {})).toThrow(GatewayError)
  })

  it('reports a subscription the gateway refuses', async () => {
    const client = track(nodeClient(gw.wsUrl))
    await client.whenConnected()
    const reported = nextEvent(client, 'error')
    const sub = client.subscribe('$res/echo/#', () => {})
    expect((await rejection(sub.ready)).code).toBe('RTW_CLIENT_SUBSCRIBE_REFUSED')
    expect((await reported)[0].code).toBe('RTW_CLIENT_SUBSCRIBE_REFUSED')
    expect(client.state).toBe('connected')
  })

  it('sends keepalive pings', async () => {
    const client = track(nodeClient(gw.wsUrl, { keepalive: 1 }))
    await new Promise<void>(resolve => {
      const onPing = (_p: unknown, c: { id: string }): void => {
        if (c.id !== client.clientId) return
        gw.app.broker.aedes.off('ping', onPing)
        resolve()
      }
      gw.app.broker.aedes.on('ping', onPing)
    })
    expect(client.state).toBe('connected')
  })

  it('retries idempotent requests after a drop and rejects the others (pending-request policy)', async () => {
    const client = track(nodeClient(gw.wsUrl))
    await client.whenConnected()
    const get = client.request('hold', '/get')
    const put = client.request('hold', '/put', { method: 'PUT', body: 'v' })
    const post = client.request('hold', '/post', { method: 'POST', body: 'once' })
    const keyed = client.request('hold', '/keyed', { method: 'POST', body: 'k', idempotent: true })
    const firsts = await Promise.all(['/get', '/put', '/post', '/keyed'].map(p => hold.next(h => h.env.path === p)))

    const reconnected = nextEvent(client, 'connected')
    const disconnected = nextEvent(client, 'disconnected')
    // Drop the client's connection from the gateway's side.
    const aedes = gw.app.broker.aedes as unknown as { clients: Record<string, { close: () => void }> }
    aedes.clients[client.clientId]?.close()
    expect((await disconnected)[0]).toMatchObject({ willReconnect: true })

    const lost = await rejection(post)
    expect(lost.code).toBe('RTW_CLIENT_CONNECTION_LOST')
    expect((await reconnected)[0]).toMatchObject({ reconnected: true })

    // Each idempotent request comes again, under a new id; a late answer to the old one is ignored.
    for (const path of ['/get', '/put', '/keyed']) {
      const again = await hold.next(h => h.env.path === path)
      const old = firsts.find(h => h.env.path === path) as (typeof firsts)[number]
      expect(again.env.id).not.toBe(old.env.id)
      hold.answer(old, 500, 'stale')
      hold.answer(again, 200, `fresh ${path}`)
    }
    expect(await get).toMatchObject({ status: 200, body: 'fresh /get' })
    expect(await put).toMatchObject({ status: 200, body: 'fresh /put' })
    expect(await keyed).toMatchObject({ status: 200, body: 'fresh /keyed' })
  })

  it('rejects everything pending with RTW_CLIENT_CLOSED on close()', async () => {
    const client = nodeClient(gw.wsUrl)
    await client.whenConnected()
    const pending = client.request('hold', '/never')
    await hold.next(h => h.env.path === '/never')
    const sub = client.subscribe('late/#', () => {})
    client.close()
    expect(client.state).toBe('closed')
    expect((await rejection(pending)).code).toBe('RTW_CLIENT_CLOSED')
    expect((await rejection(sub.ready)).code).toBe('RTW_CLIENT_CLOSED')
    expect((await rejection(client.publish('x', 'y'))).code).toBe('RTW_CLIENT_CLOSED')
    expect((await rejection(client.request('echo', '/x'))).code).toBe('RTW_CLIENT_CLOSED')
    expect((await rejection(client.whenConnected())).code).toBe('RTW_CLIENT_CLOSED')
  })
})

describe('web client across a gateway restart', () => {
  it('reconnects on the same port, resubscribes, and sends what waited', async () => {
    let gw = await startGateway()
    const port = gw.httpPort
    let responder = await startEchoResponder(gw.mqttUrl)
    const client = track(nodeClient(gw.wsUrl))
    const live = collector()
    await client.subscribe('live/#', live.handler).ready
    let peer = await connectClient(gw.mqttUrl)
    peer.publish('live/1', 'before')
    expect((await live.next()).text).toBe('before')

    const down = nextEvent(client, 'disconnected')
    await responder.endAsync()
    await peer.endAsync()
    await gw.close()
    const [info] = await down
    expect(info.willReconnect).toBe(true)
    expect(info.delayMs).toBeGreaterThanOrEqual(50)

    // Made while disconnected: never sent, so even a POST is safe to send later.
    const queuedPost = client.request('echo', '/queued', { method: 'POST', body: 'waited', timeout: 30_000 })
    const queuedPublish = client.publish('live/queued', 'from the client', { qos: 1 })

    const up = nextEvent(client, 'connected')
    gw = await startGateway({ httpPort: port })
    try {
      responder = await startEchoResponder(gw.mqttUrl)
      peer = await connectClient(gw.mqttUrl)
      expect((await up)[0]).toMatchObject({ reconnected: true })
      // 'connected' fires after the resubscription was acknowledged.
      peer.publish('live/2', 'after')
      const seen = [await live.next(), await live.next()].map(m => m.text).sort()
      expect(seen).toEqual(['after', 'from the client'])
      await queuedPublish
      expect(await queuedPost).toMatchObject({ status: 200, body: 'waited' })
    } finally {
      client.close()
      await responder.endAsync()
      await peer.endAsync()
      await gw.close()
    }
  })
})

describe('web client keepalive', () => {
  it('declares a silent connection dead and reconnects', async () => {
    // A fake broker that accepts the session but never answers PINGREQ.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    let connections = 0
    wss.on('connection', ws => {
      connections++
      ws.on('message', (data: Buffer) => {
        for (const first of splitTypes(data)) {
          if (first.type === 1) ws.send(Buffer.from([0x20, 2, 0, 0]))
          if (first.type === 8) ws.send(Buffer.from([0x90, 4, first.id >> 8, first.id & 0xff, 1, 0]))
        }
      })
    })
    await new Promise(resolve => wss.once('listening', resolve))
    const { port } = wss.address() as AddressInfo
    const client = track(nodeClient(`ws://127.0.0.1:${port}/mqtt`, { keepalive: 1, pingTimeout: 200 }))
    await client.whenConnected()
    const [info] = await nextEvent(client, 'disconnected')
    expect(info.reason).toBe('keepalive timeout')
    await nextEvent(client, 'connected')
    expect(connections).toBe(2)
    client.close()
    await new Promise(resolve => wss.close(resolve))
  })
})

/** Client-to-server packet types (CONNECT 1, SUBSCRIBE 8, …) with the packet id of a SUBSCRIBE; enough for the fake broker. */
function splitTypes (data: Buffer): Array<{ type: number, id: number }> {
  const out: Array<{ type: number, id: number }> = []
  let at = 0
  while (at < data.length) {
    const type = (data[at] as number) >> 4
    let len = 0
    let mul = 1
    let i = at + 1
    for (;;) {
      const b = data[i++] as number
      len += (b & 0x7f) * mul
      mul *= 128
      if ((b & 0x80) === 0) break
    }
    out.push({ type, id: type === 8 ? data.readUInt16BE(i) : 0 })
    at = i + len
  }
  return out
}
