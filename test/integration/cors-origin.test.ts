// allowedOrigins: the WebSocket Origin allowlist (403 before the handshake) and
// CORS for the REST API (preflights answered by the gateway, never bridged).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { rawRequest, type RawResponse } from '../helpers/http.js'
import { mintToken } from '../../gateway/cli/token.js'

interface Upgrade { status: number, body: string }

/** Attempts a WebSocket upgrade with the given Origin (none when undefined). */
async function upgrade (url: string, origin?: string): Promise<Upgrade> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'mqtt', origin === undefined ? {} : { origin })
    ws.on('open', () => { ws.close(); resolve({ status: 101, body: '' }) })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); ws.terminate() })
    })
    ws.on('error', reject)
  })
}

const call = async (gw: TestGateway, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> =>
  await rawRequest({ port: gw.httpPort, method, path, headers, ...(body === undefined ? {} : { body }) })

describe('allowedOrigins "" (default): same origin, and clients without Origin', () => {
  let gw: TestGateway
  let echo: Responder
  let self: string
  beforeAll(async () => {
    gw = await startGateway()
    echo = await startEcho(gw.mqttUrl)
    self = `http://127.0.0.1:${gw.httpPort}`
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('accepts a WebSocket without Origin and from its own origin', async () => {
    expect((await upgrade(gw.wsUrl)).status).toBe(101)
    expect((await upgrade(gw.wsUrl, self)).status).toBe(101)
  })

  it('refuses a WebSocket from another origin with 403 before the handshake', async () => {
    for (const origin of ['http://evil.example', `http://127.0.0.1:${gw.httpPort + 1}`, 'null']) {
      const r = await upgrade(gw.wsUrl, origin)
      expect(r.status).toBe(403)
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'RTW_ORIGIN_NOT_ALLOWED' } })
    }
    expect(gw.app.broker.aedes.connectedClients).toBe(1) // the echo responder only
  })

  it('refuses MQTT.js over WebSocket with a foreign Origin', async () => {
    const c = mqtt.connect(gw.wsUrl, { reconnectPeriod: 0, connectTimeout: 5_000, wsOptions: { origin: 'http://evil.example' } })
    let connected = false
    c.once('connect', () => { connected = true })
    // MQTT.js reports the refused upgrade as an error or just a close, depending on the path.
    await new Promise<void>(resolve => { c.once('error', () => resolve()); c.once('close', () => resolve()) })
    expect(connected).toBe(false)
    c.end(true)
  })

  it('answers REST from its own origin with CORS headers, and without Origin with none', async () => {
    const same = await call(gw, 'POST', '/api/echo/x', { origin: self }, 'hi')
    expect(same.status).toBe(200)
    expect(same.headers['access-control-allow-origin']).toBe(self)
    expect(same.headers.vary).toMatch(/Origin/)
    expect(String(same.headers['access-control-expose-headers'])).toMatch(/X-Request-Id/)
    const none = await call(gw, 'POST', '/api/echo/x', {}, 'hi')
    expect(none.status).toBe(200)
    expect(none.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('refuses REST from another origin with 403 before the request reaches a responder', async () => {
    const before = echo.requests.length
    for (const [method, path, body] of [['POST', '/api/echo/x', 'hi'], ['POST', '/publish', '{"topic":"a","payload":"x"}'], ['GET', '/retained/a', undefined]] as const) {
      const res = await call(gw, method, path, { origin: 'http://evil.example' }, body)
      expect(res.status).toBe(403)
      expect(res.json()).toMatchObject({ error: { code: 'RTW_ORIGIN_NOT_ALLOWED' } })
      expect(res.headers['access-control-allow-origin']).toBeUndefined()
    }
    // A preflight from it too.
    const pre = await call(gw, 'OPTIONS', '/api/echo/x', { origin: 'http://evil.example', 'access-control-request-method': 'POST' })
    expect(pre.status).toBe(403)
    expect(echo.requests.length).toBe(before)
  })

  it('leaves non-API routes alone', async () => {
    const res = await call(gw, 'GET', '/healthz', { origin: 'http://evil.example' })
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
  })
})

describe('allowedOrigins as a list', () => {
  const APP = 'https://app.example.com'
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ allowedOrigins: `${APP}, http://localhost:5173` })
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('answers a preflight for /api/* itself: 204 with methods, requested headers and max-age, not bridged', async () => {
    const before = echo.requests.length
    const res = await call(gw, 'OPTIONS', '/api/echo/x', {
      origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type, x-custom'
    })
    expect(res.status).toBe(204)
    expect(res.headers['access-control-allow-origin']).toBe(APP)
    expect(res.headers['access-control-allow-methods']).toBe('PUT')
    expect(res.headers['access-control-allow-headers']).toBe('content-type, x-custom')
    expect(res.headers['access-control-max-age']).toBe('600')
    expect(res.body.length).toBe(0)
    expect(echo.requests.length).toBe(before)
  })

  it('answers preflights for /publish and /retained/* with their methods', async () => {
    const pub = await call(gw, 'OPTIONS', '/publish', { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' })
    expect(pub.status).toBe(204)
    expect(pub.headers['access-control-allow-methods']).toBe('POST')
    const ret = await call(gw, 'OPTIONS', '/retained/a/b', { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' })
    expect(ret.status).toBe(204)
    expect(ret.headers['access-control-allow-methods']).toBe('GET, HEAD')
  })

  it('bridges an OPTIONS that is not a preflight to the service, as any method', async () => {
    const res = await call(gw, 'OPTIONS', '/api/echo/x', { origin: APP })
    expect(res.status).toBe(200)
    expect(res.headers['x-echo-method']).toBe('OPTIONS')
    expect(res.headers['access-control-allow-origin']).toBe(APP)
  })

  it('puts the CORS headers on error answers too, so a page can read them', async () => {
    const res = await call(gw, 'POST', '/api/nobody/x', { origin: APP }, 'x')
    expect(res.status).toBe(404)
    expect(res.headers['access-control-allow-origin']).toBe(APP)
    expect(res.json()).toMatchObject({ error: { code: 'RTW_NO_RESPONDER' } })
    const ok = await call(gw, 'POST', '/api/echo/x', { origin: APP }, 'x')
    expect(ok.headers['x-request-id']).toBeDefined()
    expect(String(ok.headers['access-control-expose-headers'])).toMatch(/X-Request-Id/)
  })

  it('refuses origins not on the list, the gateway\'s own included', async () => {
    for (const origin of ['https://evil.example', 'http://app.example.com', `http://127.0.0.1:${gw.httpPort}`]) {
      expect((await call(gw, 'POST', '/api/echo/x', { origin }, 'x')).status).toBe(403)
      expect((await upgrade(gw.wsUrl, origin)).status).toBe(403)
    }
    expect((await upgrade(gw.wsUrl, APP)).status).toBe(101)
    expect((await upgrade(gw.wsUrl)).status).toBe(101)
  })
})

describe('allowedOrigins "*"', () => {
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ allowedOrigins: '*' })
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('allows any origin on REST and WebSocket', async () => {
    const res = await call(gw, 'POST', '/api/echo/x', { origin: 'https://anywhere.example' }, 'x')
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe('https://anywhere.example')
    expect((await upgrade(gw.wsUrl, 'https://anywhere.example')).status).toBe(101)
  })
})

describe('CORS with auth on', () => {
  const SECRET = 'cors-test-secret'
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, allowedOrigins: 'https://app.example.com' })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'echo', password: await mintToken(['--sub', 'echo', '--serve', 'echo', '--secret', SECRET], {}) })
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('answers the preflight without a token (browsers never send one there), then requires it on the call', async () => {
    const pre = await call(gw, 'OPTIONS', '/api/echo/x', {
      origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type'
    })
    expect(pre.status).toBe(204)
    expect(pre.headers['access-control-allow-headers']).toBe('authorization, content-type')
    const anonymous = await call(gw, 'POST', '/api/echo/x', { origin: 'https://app.example.com' }, 'x')
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers['access-control-allow-origin']).toBe('https://app.example.com')
    const token = await mintToken(['--sub', 'page', '--call', 'echo', '--secret', SECRET], {})
    const ok = await call(gw, 'POST', '/api/echo/x', { origin: 'https://app.example.com', authorization: `Bearer ${token}` }, 'x')
    expect(ok.status).toBe(200)
  })
})
