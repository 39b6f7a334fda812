// MQTT-native callers: requests published on $req/… with a replyTo in the
// caller's own inbox, answered there by the gateway; inbox and $res ACLs.
import type { MqttClient } from 'mqtt'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, nextMessage, recordMessages, subscribe } from '../helpers/mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'

interface CallerReply { id: string, status: number, headers: Record<string, string>, body?: string, enc?: string }

describe('MQTT-native callers', () => {
  let gw: TestGateway
  let echo: Responder
  let held: Responder
  let caller: MqttClient

  beforeAll(async () => {
    gw = await startGateway({ maxTimeoutMs: 30_000 })
    echo = await startEcho(gw.mqttUrl)
    held = await Responder.start(gw.mqttUrl, '$req/held/#')
    caller = await connectClient(gw.mqttUrl, { clientId: 'caller-a' })
    await subscribe(caller, '$inbox/caller-a/#')
  })
  afterAll(async () => {
    await caller?.endAsync()
    await held?.close()
    await echo?.close()
    await gw?.close()
  })

  /** Publishes a request and returns the next reply in the inbox topic it names. */
  async function request (c: MqttClient, topic: string, env: Record<string, unknown>, opts: { retain?: boolean } = {}): Promise<CallerReply> {
    const replyTo = env.replyTo as string
    const next = nextMessage(c, t => t === replyTo)
    await c.publishAsync(topic, JSON.stringify(env), { qos: 1, retain: opts.retain ?? false })
    const msg = await next
    return JSON.parse(msg.payload.toString('utf8')) as CallerReply
  }

  it('gets the responder reply in its inbox, with its own id; the responder sees the gateway id', async () => {
    const reply = await request(caller, '$req/echo/dev/7', { id: 'c-1', replyTo: '$inbox/caller-a/r1', method: 'PUT', query: 'q=1', headers: { 'content-type': 'text/plain', 'x-dev': 'yes' }, body: 'hello over mqtt' })
    expect(reply).toMatchObject({ id: 'c-1', status: 200, body: 'hello over mqtt' })
    expect(reply.headers).toMatchObject({ 'content-type': 'text/plain', 'x-echo-method': 'PUT', 'x-echo-path': '/dev/7', 'x-echo-query': 'q=1' })
    const seen = echo.requests.at(-1)
    expect(seen?.env.id).not.toBe('c-1')
    expect(seen?.env.replyTo).toBe(`$res/echo/$rid/${seen?.env.id ?? ''}`)
    expect(seen?.env.headers['x-dev']).toBe('yes')
    expect(seen?.env.deadline).toBeGreaterThan(Date.now())
  })

  it('defaults the method to POST and sends a JSON body value as JSON', async () => {
    const reply = await request(caller, '$req/echo/json', { id: 'c-2', replyTo: '$inbox/caller-a/r', body: { a: [1, 2] } })
    expect(reply.status).toBe(200)
    expect(reply.headers['x-echo-method']).toBe('POST')
    expect(reply.headers['content-type']).toBe('application/json')
    expect(JSON.parse(reply.body ?? '')).toEqual({ a: [1, 2] })
  })

  it('carries binary bodies as base64 both ways, byte for byte', async () => {
    const bytes = Buffer.concat([Buffer.from([0xff, 0x00, 0xc3]), randomBytes(1000)])
    const reply = await request(caller, '$req/echo/bin', { id: 'c-3', replyTo: '$inbox/caller-a/r', body: bytes.toString('base64'), enc: 'base64' })
    expect(reply.status).toBe(200)
    expect(reply.enc).toBe('base64')
    expect(Buffer.from(reply.body ?? '', 'base64').equals(bytes)).toBe(true)
  })

  it('gets a 404 RTW_NO_RESPONDER error reply at once when nobody subscribes the service', async () => {
    const start = performance.now()
    const reply = await request(caller, '$req/nobody/x', { id: 'c-404', replyTo: '$inbox/caller-a/r', timeout: 20_000 })
    expect(performance.now() - start).toBeLessThan(1000)
    expect(reply.id).toBe('c-404')
    expect(reply.status).toBe(404)
    expect(JSON.parse(reply.body ?? '')).toMatchObject({ error: { code: 'RTW_NO_RESPONDER' } })
  })

  it('gets a 504 error reply when the responder does not answer within its timeout (ms)', async () => {
    const start = performance.now()
    const reply = await request(caller, '$req/held/slow', { id: 'c-504', replyTo: '$inbox/caller-a/r', timeout: 300 })
    const ms = performance.now() - start
    expect(reply.status).toBe(504)
    expect(JSON.parse(reply.body ?? '')).toMatchObject({ error: { code: 'RTW_REPLY_TIMEOUT' } })
    expect(ms).toBeGreaterThanOrEqual(295)
    expect(ms).toBeLessThan(2000)
  })

  it.each([
    ['a lower-case method', '$req/echo/x', { method: 'get' }, 400, 'RTW_BAD_REQUEST'],
    ['headers that are not strings', '$req/echo/x', { headers: { a: { b: 1 } } }, 400, 'RTW_BAD_REQUEST'],
    ['an unknown encoding', '$req/echo/x', { body: 'x', enc: 'hex' }, 400, 'RTW_BAD_REQUEST'],
    ['a timeout of 0', '$req/echo/x', { timeout: 0 }, 400, 'RTW_BAD_TIMEOUT'],
    ['a timeout above maxTimeoutMs', '$req/echo/x', { timeout: 30_001 }, 400, 'RTW_BAD_TIMEOUT'],
    ['a "$" path level', '$req/echo/$x', {}, 400, 'RTW_BAD_TARGET'],
    ['a ".." path level', '$req/echo/../x', {}, 400, 'RTW_BAD_TARGET'],
    ['an empty path level', '$req/echo//x', {}, 400, 'RTW_BAD_TARGET']
  ])('gets an error reply for %s', async (_what, topic, extra, status, code) => {
    const before = echo.requests.length
    const reply = await request(caller, topic, { id: 'c-bad', replyTo: '$inbox/caller-a/r', ...extra })
    expect(reply.id).toBe('c-bad')
    expect(reply.status).toBe(status)
    expect(JSON.parse(reply.body ?? '')).toMatchObject({ error: { code } })
    expect(echo.requests.length).toBe(before)
  })

  it('drops a request whose replyTo is not its own inbox: no reply, and the responder never sees it', async () => {
    const victim = await connectClient(gw.mqttUrl, { clientId: 'victim-1' })
    try {
      await subscribe(victim, '$inbox/victim-1/#')
      const victimGot = recordMessages(victim)
      const callerGot = recordMessages(caller)
      const before = echo.requests.length
      await caller.publishAsync('$req/echo/x', JSON.stringify({ id: 'steal', replyTo: '$inbox/victim-1/r', body: 'misdirected' }), { qos: 1 })
      await caller.publishAsync('$req/echo/x', JSON.stringify({ id: 'no-inbox', replyTo: 'plain/topic', body: 'misdirected' }), { qos: 1 })
      // A later request from the same caller has gone all the way round, so the earlier ones were handled.
      const reply = await request(caller, '$req/echo/x', { id: 'after', replyTo: '$inbox/caller-a/r', body: 'fine' })
      expect(reply.body).toBe('fine')
      expect(echo.requests.slice(before).map(r => r.env.body)).toEqual(['fine'])
      expect(victimGot).toEqual([])
      expect(callerGot.map(m => JSON.parse(m.payload.toString()).id)).toEqual(['after'])
    } finally {
      await victim.endAsync()
    }
  })

  it('gives two callers using the same request id each only their own reply', async () => {
    const b = await connectClient(gw.mqttUrl, { clientId: 'caller-b' })
    try {
      await subscribe(b, '$inbox/caller-b/#')
      const gotA = recordMessages(caller)
      const gotB = recordMessages(b)
      const before = held.requests.length
      const ra = nextMessage(caller, t => t === '$inbox/caller-a/same')
      const rb = nextMessage(b, t => t === '$inbox/caller-b/same')
      await caller.publishAsync('$req/held/same', JSON.stringify({ id: 'same', replyTo: '$inbox/caller-a/same', body: 'from A' }), { qos: 1 })
      await b.publishAsync('$req/held/same', JSON.stringify({ id: 'same', replyTo: '$inbox/caller-b/same', body: 'from B' }), { qos: 1 })
      const reqs = (await held.waitForRequests(before + 2)).slice(before)
      expect(new Set(reqs.map(r => r.env.id)).size).toBe(2)
      // Answer B first, then A, each with a body naming whose request it was.
      const order = ['from B', 'from A'].map(body => reqs.find(r => r.env.body === body))
      for (const r of order) {
        if (r === undefined) throw new Error('a request is missing')
        await held.reply(r, { body: `answer to ${r.env.body ?? ''}` })
      }
      const [a, bb] = await Promise.all([ra, rb])
      expect(JSON.parse(a.payload.toString())).toMatchObject({ id: 'same', body: 'answer to from A' })
      expect(JSON.parse(bb.payload.toString())).toMatchObject({ id: 'same', body: 'answer to from B' })
      expect(gotA.length).toBe(1)
      expect(gotB.length).toBe(1)
    } finally {
      await b.endAsync()
    }
  })

  it('accepts a mirror-topic reply for an MQTT caller\'s request', async () => {
    const before = held.requests.length
    const pending = request(caller, '$req/held/mirror/m', { id: 'c-m', replyTo: '$inbox/caller-a/r', body: 'm' })
    const [req] = (await held.waitForRequests(before + 1)).slice(before)
    if (req === undefined) throw new Error('no request')
    await held.reply(req, { status: 202, body: 'mirrored' }, { topic: '$res/held/mirror/m' })
    expect(await pending).toMatchObject({ id: 'c-m', status: 202, body: 'mirrored' })
  })

  it('never forwards a request as retained, even when the caller set retain', async () => {
    const before = held.requests.length
    const retained: boolean[] = []
    held.client.on('message', (_t, _p, packet) => retained.push(packet.retain))
    const pending = request(caller, '$req/held/ret', { id: 'c-r', replyTo: '$inbox/caller-a/r', body: 'r' }, { retain: true })
    const [req] = (await held.waitForRequests(before + 1)).slice(before)
    if (req === undefined) throw new Error('no request')
    await held.reply(req, { body: 'ok' })
    await pending
    expect(retained).toEqual([false])
    expect(await gw.app.broker.readRetained('$req/held/ret')).toBeNull()
  })

  describe('ACLs on $res and $inbox', () => {
    it.each([
      ['$res/#'], ['$res'], ['$res/echo/$rid/+'], ['$inbox/caller-b/#'], ['$inbox/#'], ['$inbox/+/r'], ['$inbox']
    ])('refuses %s with SUBACK 128 and keeps the connection', async filter => {
      expect(await grantedQos(caller, filter)).toEqual([128])
      expect(caller.connected).toBe(true)
    })

    it('grants a client its own inbox', async () => {
      expect(await grantedQos(caller, ['$inbox/caller-a/+', '$inbox/caller-a/x/y'])).toEqual([1, 1])
    })

    it.each([
      ['+', '$inbox/+/#'],
      ['has/slash', '$inbox/has/slash/#'],
      ['caller', '$inbox/caller-a/#']
    ])('refuses client id %s the filter %s, which would reach other inboxes', async (clientId, filter) => {
      const c = await connectClient(gw.mqttUrl, { clientId })
      try {
        expect(await grantedQos(c, filter)).toEqual([128])
      } finally {
        await c.endAsync()
      }
    })
  })

  it('works over MQTT over WebSocket too', async () => {
    const ws = await connectClient(gw.wsUrl, { clientId: 'ws-caller' })
    try {
      await subscribe(ws, '$inbox/ws-caller/#')
      const reply = await request(ws, '$req/echo/ws', { id: 'w-1', replyTo: '$inbox/ws-caller/r', body: 'over ws' })
      expect(reply).toMatchObject({ id: 'w-1', status: 200, body: 'over ws' })
    } finally {
      await ws.endAsync()
    }
  })
})
