// Every failure is answered with its status and stable code, never left hanging.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startGateway, getStats, type TestGateway } from '../helpers/gateway.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { rawRequest } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { drainAndClose } from '../../gateway/shutdown.js'

interface ErrorJson { error: { code: string, message: string, requestId?: string } }

async function timed (url: string, init?: RequestInit): Promise<{ res: Response, ms: number, body: ErrorJson }> {
  const start = performance.now()
  const res = await fetch(url, init)
  const text = await res.text()
  const ms = performance.now() - start
  return { res, ms, body: JSON.parse(text) as ErrorJson }
}

describe('failures of a running gateway', () => {
  let gw: TestGateway
  let held: Responder
  let echo: Responder

  beforeAll(async () => {
    gw = await startGateway({ bodyLimit: 4096, requestTimeoutMs: 400, maxTimeoutMs: 20_000 })
    held = await Responder.start(gw.mqttUrl, '$req/slow/#')
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await held?.close()
    await echo?.close()
    await gw?.close()
  })

  describe('404 RTW_NO_RESPONDER', () => {
    it('is answered at once, not after the timeout, when nobody subscribes the service', async () => {
      const { res, ms, body } = await timed(`${gw.httpUrl}/api/nobody/x?timeout=15`, { method: 'POST', body: 'hi' })
      expect(res.status).toBe(404)
      expect(body.error.code).toBe('RTW_NO_RESPONDER')
      expect(typeof body.error.message).toBe('string')
      expect(ms).toBeLessThan(1000)
    })

    it('does not count a catch-all "#" or "+/…" subscriber as a responder ([MQTT-4.7.2-1])', async () => {
      const c = await connectClient(gw.mqttUrl)
      try {
        await subscribe(c, ['#', '+/nobody/#', 'req/nobody/#'])
        const { res, ms, body } = await timed(`${gw.httpUrl}/api/nobody/x?timeout=15`)
        expect(res.status).toBe(404)
        expect(body.error.code).toBe('RTW_NO_RESPONDER')
        expect(ms).toBeLessThan(1000)
      } finally {
        await c.endAsync()
      }
    })

    it('sees a responder as soon as it subscribes, and its absence once it leaves', async () => {
      const r = await startEcho(gw.mqttUrl, '$req/late-comer/+/b')
      let closed = false
      try {
        const ok = await fetch(`${gw.httpUrl}/api/late-comer/a/b`, { method: 'POST', body: 'x' })
        expect(ok.status).toBe(200)
        // The filter is exact below the wildcard level.
        expect((await fetch(`${gw.httpUrl}/api/late-comer/a/c`)).status).toBe(404)
        await r.close()
        closed = true
        await waitFor(() => !gw.app.broker.subscriptions.hasMatch('$req/late-comer/a/b'), { what: 'the subscription to go' })
        expect((await fetch(`${gw.httpUrl}/api/late-comer/a/b`)).status).toBe(404)
      } finally {
        if (!closed) await r.close()
      }
    })

    it('counts a responder whose persistent session comes back without subscribing again', async () => {
      const first = await connectClient(gw.mqttUrl, { clientId: 'persistent-responder', clean: false })
      await subscribe(first, '$req/persistent/#')
      await first.endAsync()
      await waitFor(() => !gw.app.broker.subscriptions.hasMatch('$req/persistent/x'), { what: 'the offline session to stop counting' })
      expect((await fetch(`${gw.httpUrl}/api/persistent/x?timeout=5`)).status).toBe(404)

      // The same client id, clean=false: the broker restores the subscription, and so must the index.
      const again = await connectClient(gw.mqttUrl, { clientId: 'persistent-responder', clean: false })
      try {
        again.on('message', (_topic, payload) => {
          const env = JSON.parse(payload.toString()) as { id: string, replyTo: string }
          void again.publishAsync(env.replyTo, JSON.stringify({ id: env.id, status: 200, body: 'back again' }))
        })
        await waitFor(() => gw.app.broker.subscriptions.hasMatch('$req/persistent/x'), { what: 'the restored subscription' })
        const res = await fetch(`${gw.httpUrl}/api/persistent/x?timeout=5`)
        expect([res.status, await res.text()]).toEqual([200, 'back again'])
      } finally {
        await again.endAsync()
      }
    })

    it('answers an unknown route outside /api with RTW_ROUTE_NOT_FOUND', async () => {
      const { res, body } = await timed(`${gw.httpUrl}/nope`)
      expect(res.status).toBe(404)
      expect(body.error.code).toBe('RTW_ROUTE_NOT_FOUND')
    })
  })

  describe('504 RTW_REPLY_TIMEOUT', () => {
    it('arrives near the timeout given in the query (timeout=300ms)', async () => {
      const before = held.requests.length
      const { res, ms, body } = await timed(`${gw.httpUrl}/api/slow/x?timeout=300ms`, { method: 'POST', body: 'wait' })
      expect(res.status).toBe(504)
      expect(body.error.code).toBe('RTW_REPLY_TIMEOUT')
      // The request was published, so the error names it.
      expect(body.error.requestId).toBe(res.headers.get('x-request-id'))
      expect(body.error.requestId).toBe(held.requests[before]?.env.id)
      expect(ms).toBeGreaterThanOrEqual(295)
      expect(ms).toBeLessThan(2000)
    })

    it('takes the timeout from the X-RTW-Timeout header, in seconds', async () => {
      const { res, ms, body } = await timed(`${gw.httpUrl}/api/slow/x`, { headers: { 'x-rtw-timeout': '0.3' } })
      expect(res.status).toBe(504)
      expect(body.error.code).toBe('RTW_REPLY_TIMEOUT')
      expect(ms).toBeGreaterThanOrEqual(295)
      expect(ms).toBeLessThan(2000)
    })

    it('prefers the query parameter over the header', async () => {
      const { res, ms } = await timed(`${gw.httpUrl}/api/slow/x?timeout=0.3`, { headers: { 'x-rtw-timeout': '15' } })
      expect(res.status).toBe(504)
      expect(ms).toBeLessThan(2000)
    })

    it('uses the configured default (requestTimeoutMs) when the caller names none', async () => {
      const { res, ms, body } = await timed(`${gw.httpUrl}/api/slow/x`)
      expect(res.status).toBe(504)
      expect(body.error.code).toBe('RTW_REPLY_TIMEOUT')
      expect(ms).toBeGreaterThanOrEqual(395)
      expect(ms).toBeLessThan(2500)
    })
  })

  describe('502 RTW_BAD_REPLY', () => {
    const bad: Array<[string, string]> = [
      ['not JSON', 'this is not json'],
      ['a JSON array', '[1,2,3]'],
      ['a status out of range', '{"status":700}'],
      ['an informational 1xx status (would break the HTTP exchange)', '{"status":101}'],
      ['a status that is not a number', '{"status":"200"}'],
      ['headers that are not strings', '{"status":200,"headers":{"x":{"nested":true}}}'],
      ['an unknown encoding', '{"status":200,"body":"abc","enc":"hex"}'],
      ['a header value above U+00FF (Node cannot write it)', '{"status":200,"headers":{"x-name":"中"}}'],
      ['a header value with CR LF (response splitting)', '{"status":200,"headers":{"x-a":"1\\r\\nset-cookie: a=b"}}'],
      ['a header name that is not a token', '{"status":200,"headers":{"bad name":"1"}}'],
      ['a base64 body that is not a string', '{"status":200,"body":5,"enc":"base64"}']
    ]
    it.each(bad)('answers a reply on the $rid topic that is %s', async (_what, payload) => {
      const r = await Responder.start(gw.mqttUrl, '$req/broken/#', (req, self) => { void self.publish(req.env.replyTo, payload) })
      try {
        const { res, body } = await timed(`${gw.httpUrl}/api/broken/x?timeout=5`, { method: 'POST', body: 'x' })
        expect(res.status).toBe(502)
        expect(body.error.code).toBe('RTW_BAD_REPLY')
        expect(body.error.requestId).toBe(r.requests[0]?.env.id)
        // The gateway is still serving.
        expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)
      } finally {
        await r.close()
      }
    })
  })

  describe('413 RTW_PAYLOAD_TOO_LARGE', () => {
    it('refuses a body over bodyLimit without publishing it', async () => {
      const before = echo.requests.length
      const { res, body } = await timed(`${gw.httpUrl}/api/echo/big`, { method: 'POST', body: 'x'.repeat(4097), headers: { 'content-type': 'text/plain' } })
      expect(res.status).toBe(413)
      expect(body.error.code).toBe('RTW_PAYLOAD_TOO_LARGE')
      // A body at the limit still passes, and it is the only one the responder saw.
      const ok = await fetch(`${gw.httpUrl}/api/echo/big`, { method: 'POST', body: 'y'.repeat(4096), headers: { 'content-type': 'text/plain' } })
      expect(ok.status).toBe(200)
      expect((await ok.text()).length).toBe(4096)
      expect(echo.requests.length).toBe(before + 1)
    })

    it('refuses a chunked body (no Content-Length) over bodyLimit', async () => {
      const big = Buffer.alloc(10_000, 0xff)
      const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/chunked', headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/octet-stream' }, body: big })
      expect(res.status).toBe(413)
      expect(res.json().error.code).toBe('RTW_PAYLOAD_TOO_LARGE')
    })
  })

  describe('400 RTW_BAD_TARGET', () => {
    const targets = [
      '/api/echo/a/+/b', '/api/echo/%2B', '/api/echo/%23', '/api/echo/a%23b', '/api/+/x', '/api/%23',
      '/api/echo/$x', '/api/echo/%24rid/1', '/api/%24req/x', '/api/ech$o/x',
      '/api/echo/a%2Fb', '/api/echo/a%2fb/c',
      '/api/echo/../x', '/api/echo/%2e%2e/x', '/api/echo/./x', '/api/echo/x/..',
      '/api/echo//x', '/api/echo/x/', '/api/', '/api//x',
      '/api/echo/%00', '/api/echo/%zz', '/api/' + 's'.repeat(65) + '/x', '/api/se.rvice/x'
    ]
    it.each(targets)('refuses %s before publishing', async path => {
      const before = echo.requests.length
      const res = await rawRequest({ port: gw.httpPort, method: 'POST', path, body: 'x', headers: { 'content-type': 'text/plain' } })
      expect(res.status).toBe(400)
      expect(res.json().error.code).toBe('RTW_BAD_TARGET')
      expect(echo.requests.length).toBe(before)
    })

    it('accepts percent-encoded levels that are valid once decoded', async () => {
      const before = echo.requests.length
      const res = await rawRequest({ port: gw.httpPort, method: 'GET', path: '/api/echo/a%20b/%C3%A9%E4%B8%AD/c.d' })
      expect(res.status).toBe(200)
      expect(echo.requests[before]?.topic).toBe('$req/echo/a b/é中/c.d')
      expect(echo.requests[before]?.env.path).toBe('/a b/é中/c.d')
    })
  })

  describe('400 RTW_BAD_TIMEOUT', () => {
    const bad: Array<[string, string, Record<string, string>]> = [
      ['a word', '?timeout=soon', {}],
      ['a negative number', '?timeout=-1', {}],
      ['above maxTimeoutMs', '?timeout=21', {}],
      ['above maxTimeoutMs in ms', '?timeout=20001ms', {}],
      ['minutes', '?timeout=1m', {}],
      ['an exponent in the header', '', { 'x-rtw-timeout': '1e3' }],
      ['an empty query value', '?timeout=', {}]
    ]
    it.each(bad)('refuses %s', async (_what, query, headers) => {
      const before = echo.requests.length
      const { res, body } = await timed(`${gw.httpUrl}/api/echo/x${query}`, { headers })
      expect(res.status).toBe(400)
      expect(body.error.code).toBe('RTW_BAD_TIMEOUT')
      expect(echo.requests.length).toBe(before)
    })
  })

  describe('202 fire and forget', () => {
    beforeEach(() => { held.requests.length = 0 })

    it.each([
      ['timeout=0', '?timeout=0', {}],
      ['Prefer: respond-async', '', { prefer: 'respond-async' }],
      ['X-RTW-Timeout: 0', '', { 'x-rtw-timeout': '0' }]
    ])('publishes with no replyTo and answers 202 for %s', async (_what, query, headers) => {
      const res = await fetch(`${gw.httpUrl}/api/slow/ff${query}`, { method: 'POST', body: 'fire', headers: { ...headers, 'content-type': 'text/plain' } })
      expect(res.status).toBe(202)
      const body = await res.json() as { id: string, status: string }
      expect(body.status).toBe('accepted')
      expect(res.headers.get('x-request-id')).toBe(body.id)
      expect(res.headers.get('preference-applied')).toBe('respond-async')
      const [req] = await held.waitForRequests(1)
      expect(req?.env.id).toBe(body.id)
      expect(req?.env.replyTo).toBe('')
      expect(req?.env.deadline).toBe(0)
      expect(req?.env.body).toBe('fire')
      expect(req?.env.headers).not.toHaveProperty('prefer')
      expect(gw.app.bridge.correlator.has(body.id)).toBe(false)
    })

    it('still answers 404 at once when nobody subscribes', async () => {
      const res = await fetch(`${gw.httpUrl}/api/nobody/ff?timeout=0`, { method: 'POST', body: 'x' })
      expect(res.status).toBe(404)
    })
  })
})

describe('429 RTW_TOO_MANY_REQUESTS', () => {
  let gw: TestGateway
  let held: Responder

  beforeAll(async () => {
    gw = await startGateway({ maxInFlight: 3 })
    held = await Responder.start(gw.mqttUrl, '$req/slow/#')
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })

  it('refuses a request above maxInFlight at once, and admits again once one settles', async () => {
    const pending = [0, 1, 2].map(async i => await fetch(`${gw.httpUrl}/api/slow/${i}?timeout=20`, { method: 'POST', body: `b${i}` }))
    const reqs = await held.waitForRequests(3)
    expect((await getStats(gw.httpUrl)).inFlight).toBe(3)

    const { res, ms, body } = await timed(`${gw.httpUrl}/api/slow/over?timeout=20`, { method: 'POST', body: 'over' })
    expect(res.status).toBe(429)
    expect(body.error.code).toBe('RTW_TOO_MANY_REQUESTS')
    expect(ms).toBeLessThan(1000)
    expect(held.requests.length).toBe(3)

    for (const r of reqs.slice(0, 3)) await held.reply(r, { body: `answer ${r.env.body ?? ''}` })
    const answered = await Promise.all(pending)
    expect(await Promise.all(answered.map(async r => [r.status, await r.text()]))).toEqual([[200, 'answer b0'], [200, 'answer b1'], [200, 'answer b2']])

    const again = fetch(`${gw.httpUrl}/api/slow/again?timeout=20`, { method: 'POST', body: 'again' })
    const [,,, fourth] = await held.waitForRequests(4)
    if (fourth === undefined) throw new Error('no fourth request')
    await held.reply(fourth, { body: 'ok' })
    expect((await again).status).toBe(200)
  })
})

describe('503 RTW_SHUTTING_DOWN while draining (in process)', () => {
  let gw: TestGateway
  let held: Responder

  beforeAll(async () => {
    gw = await startGateway()
    held = await Responder.start(gw.mqttUrl, '$req/slow/#')
  })
  afterAll(async () => {
    await held?.close().catch(() => {})
    await gw?.close()
  })

  it('refuses new requests, lets in-flight ones finish within the grace, and answers the rest 503', async () => {
    const answeredInGrace = fetch(`${gw.httpUrl}/api/slow/a?timeout=20`, { method: 'POST', body: 'a' })
    const neverAnswered = fetch(`${gw.httpUrl}/api/slow/b?timeout=20`, { method: 'POST', body: 'b' })
    const [ra, rb] = await held.waitForRequests(2)
    if (ra === undefined || rb === undefined) throw new Error('requests missing')
    const [first, second] = ra.env.body === 'a' ? [ra, rb] : [rb, ra]

    const drained = drainAndClose(gw.app, 700)

    const refused = await fetch(`${gw.httpUrl}/api/slow/c`, { method: 'POST', body: 'c' })
    expect(refused.status).toBe(503)
    expect(((await refused.json()) as ErrorJson).error.code).toBe('RTW_SHUTTING_DOWN')
    const ready = await fetch(`${gw.httpUrl}/readyz`)
    expect(ready.status).toBe(503)
    expect(held.requests.length).toBe(2)

    await held.reply(first, { body: 'done in time' })
    const a = await answeredInGrace
    expect(a.status).toBe(200)
    expect(await a.text()).toBe('done in time')

    const b = await neverAnswered
    expect(b.status).toBe(503)
    const bBody = await b.json() as ErrorJson
    expect(bBody.error.code).toBe('RTW_SHUTTING_DOWN')
    expect(bBody.error.requestId).toBe(second.env.id)

    await drained
    await expect(fetch(`${gw.httpUrl}/healthz`)).rejects.toThrow()
  })
})
