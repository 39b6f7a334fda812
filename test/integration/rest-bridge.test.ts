// REST → $req → echo responder → $res → REST: bodies byte for byte, any method.
import { randomBytes } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { rawRequest } from '../helpers/http.js'

describe('REST bridge round trip through an echo responder', () => {
  let gw: TestGateway
  let responder: Responder

  beforeAll(async () => {
    gw = await startGateway()
    responder = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await responder?.close()
    await gw?.close()
  })

  it('returns a JSON body unchanged, with its content type', async () => {
    const body = JSON.stringify({ a: 1, nested: { list: [1, 'two', null], unicode: 'żółw 🐢' } })
    const res = await fetch(`${gw.httpUrl}/api/echo/things/42`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.text()).toBe(body)
  })

  it('returns a text body unchanged, including whitespace and non-ASCII', async () => {
    const body = '  line one\r\nline two\ttab\n\u00e9\u4e2d\u6587 \u0000 end  '
    const res = await fetch(`${gw.httpUrl}/api/echo/text`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(body, 'utf8'))).toBe(true)
  })

  it('returns random binary bytes (invalid UTF-8) byte for byte, sent as base64 on MQTT', async () => {
    const bytes = randomBytes(64 * 1024)
    // Make sure the body is not valid UTF-8: 0xff never appears in UTF-8.
    bytes[17] = 0xff
    expect(isUtf8(bytes)).toBe(false)
    const before = responder.requests.length
    const res = await fetch(`${gw.httpUrl}/api/echo/blob`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    const back = Buffer.from(await res.arrayBuffer())
    expect(back.length).toBe(bytes.length)
    expect(back.equals(bytes)).toBe(true)
    const seen = responder.requests[before]
    expect(seen?.env.enc).toBe('base64')
    expect(Buffer.from(seen?.env.body ?? '', 'base64').equals(bytes)).toBe(true)
  })

  it('carries a binary body that happens to be valid UTF-8 as a string, still byte for byte', async () => {
    const bytes = Buffer.from([0x00, 0x01, 0x7f, 0xc3, 0xa9, 0xe2, 0x82, 0xac])
    const before = responder.requests.length
    const res = await fetch(`${gw.httpUrl}/api/echo/blob`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true)
    expect(responder.requests[before]?.env.enc).toBeUndefined()
  })

  it.each(['GET', 'DELETE', 'OPTIONS'])('bridges %s without a body', async method => {
    const res = await fetch(`${gw.httpUrl}/api/echo/items/7?verbose=1&tag=a%20b`, { method })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-echo-method')).toBe(method)
    expect(res.headers.get('x-echo-path')).toBe('/items/7')
    expect(res.headers.get('x-echo-query')).toBe('verbose=1&tag=a%20b')
    expect(await res.text()).toBe('')
  })

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND', 'QUERY', 'REPORT'])('bridges %s with its body', async method => {
    const body = `<body method="${method}"/>`
    const res = await fetch(`${gw.httpUrl}/api/echo/m`, { method, body, headers: { 'content-type': 'application/xml' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-echo-method')).toBe(method)
    expect(res.headers.get('content-type')).toBe('application/xml')
    expect(await res.text()).toBe(body)
  })

  it('frames a reply with Content-Length, not chunked, and sends none with a 204', async () => {
    const body = Buffer.from('sized reply ✓')
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/sized', body, headers: { 'content-type': 'text/plain' } })
    expect(res.status).toBe(200)
    expect(res.headers['content-length']).toBe(String(body.length))
    expect(res.headers['transfer-encoding']).toBeUndefined()
    expect(res.body.equals(body)).toBe(true)

    const empty = await Responder.start(gw.mqttUrl, '$req/empty/#', (req, r) => { void r.reply(req, { status: 204, body: 'dropped' }) })
    try {
      const none = await rawRequest({ port: gw.httpPort, method: 'DELETE', path: '/api/empty/x' })
      expect(none.status).toBe(204)
      expect(none.headers['content-length']).toBeUndefined()
      expect(none.headers['transfer-encoding']).toBeUndefined()
      expect(none.body.length).toBe(0)
    } finally {
      await empty.close()
    }
  })

  it('bridges HEAD: status and headers, no body', async () => {
    const res = await fetch(`${gw.httpUrl}/api/echo/h`, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-echo-method')).toBe('HEAD')
    expect(await res.text()).toBe('')
  })

  it('publishes the request envelope the protocol describes on $req/<service>/<path>', async () => {
    const before = responder.requests.length
    const res = await fetch(`${gw.httpUrl}/api/echo/a/b%20c/d?x=1&timeout=5`, {
      method: 'POST',
      body: '{"k":"v"}',
      headers: { 'content-type': 'application/json', 'x-custom': 'yes', 'x-rtw-timeout': '7', connection: 'keep-alive' }
    })
    expect(res.status).toBe(200)
    const id = res.headers.get('x-request-id')
    const seen = responder.requests[before]
    expect(seen?.topic).toBe('$req/echo/a/b c/d')
    const env = seen?.env
    expect(env?.id).toBe(id)
    expect(env?.method).toBe('POST')
    expect(env?.path).toBe('/a/b c/d')
    // The gateway's own control (timeout) is consumed, the rest of the query kept.
    expect(env?.query).toBe('x=1')
    expect(env?.body).toBe('{"k":"v"}')
    expect(env?.replyTo).toBe(`$res/echo/$rid/${id}`)
    expect(env?.deadline).toBeGreaterThan(Date.now())
    expect(env?.deadline).toBeLessThanOrEqual(Date.now() + 5_000)
    expect(env?.headers['x-custom']).toBe('yes')
    expect(env?.headers['content-type']).toBe('application/json')
    // Hop-by-hop headers and the gateway's controls are not forwarded.
    expect(env?.headers).not.toHaveProperty('connection')
    expect(env?.headers).not.toHaveProperty('host')
    expect(env?.headers).not.toHaveProperty('x-rtw-timeout')
  })

  it('bridges a request without a path below the service', async () => {
    const res = await fetch(`${gw.httpUrl}/api/echo`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-echo-path')).toBe('')
    expect(await res.text()).toBe('x')
  })

  it('bridges a body with no content type byte for byte', async () => {
    const bytes = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff])
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/raw', body: bytes, headers: { 'content-length': String(bytes.length) } })
    expect(res.status).toBe(200)
    expect(res.body.equals(bytes)).toBe(true)
  })

  it('returns the responder status and headers as they were sent', async () => {
    const r = await Responder.start(gw.mqttUrl, '$req/custom/#', (req, self) => {
      void self.reply(req, { status: 418, headers: { 'X-Teapot': 'short and stout' }, body: { brewed: false } })
    })
    try {
      const res = await fetch(`${gw.httpUrl}/api/custom/x`, { method: 'POST', body: 'y' })
      expect(res.status).toBe(418)
      expect(res.headers.get('x-teapot')).toBe('short and stout')
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(await res.json()).toEqual({ brewed: false })
    } finally {
      await r.close()
    }
  })
})
