// The route table (core/http-routes.ts, [P-11.11]) is what the REST token
// check and CORS read, and they follow the route the router chose: a path
// whose first level is percent-encoded ("/%61pi/echo" is "/api/echo" to the
// router) needs the same token and passes the same Origin check.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HTTP_ROUTES, httpRoute } from '../../core/http-routes.js'
import { mintToken } from '../../gateway/cli/token.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { rawRequest, type RawResponse } from '../helpers/http.js'

const SECRET = 'http-routes-secret-with-enough-length'
const APP = 'https://app.example'

/** The same path with the first character of its first level percent-encoded. */
const encoded = (path: string): string => '/%' + path.charCodeAt(1).toString(16) + path.slice(2)

/** A concrete request for each row offered cross-origin or needing a token. */
const EXAMPLES: Record<string, { method: string, path: string }> = {
  '/api/*': { method: 'GET', path: '/api/echo/x' },
  '/publish': { method: 'POST', path: '/publish' },
  '/retained/*': { method: 'GET', path: '/retained/routes/r' },
  '/requests/:handle': { method: 'GET', path: '/requests/nohandle' },
  '/events': { method: 'GET', path: '/events?topic=a' },
  '/history': { method: 'GET', path: '/history?topic=a' }
}

describe('the route table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtw-routes-'))
  afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

  it('has a row for every route the gateway registers, and registers every row', async () => {
    const registered = new Set<string>()
    for (const overrides of [{}, { staticDir: dir }]) {
      const gw = await startGateway(overrides)
      try {
        for (const r of gw.app.registeredRoutes) registered.add(r.url)
      } finally {
        await gw.close()
      }
    }
    // A new route needs its row in core/http-routes.ts: who checks the caller, and whether CORS applies.
    expect([...registered].filter(url => httpRoute(url) === undefined)).toEqual([])
    expect(HTTP_ROUTES.map(r => r.url).filter(url => !registered.has(url))).toEqual([])
  })

  it('gives every row that needs a token, or is offered cross-origin, an example here', () => {
    const covered = HTTP_ROUTES.filter(r => r.auth === 'token' || r.cors !== undefined).map(r => r.url)
    expect(covered.sort()).toEqual(Object.keys(EXAMPLES).sort())
  })
})

describe('with auth on', () => {
  let gw: TestGateway
  let echo: Responder
  let token: string
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> =>
    await rawRequest({ port: gw.httpPort, method, path, headers, ...(body === undefined ? {} : { body }) })
  const bearer = (): Record<string, string> => ({ authorization: `Bearer ${token}` })
  const retain = (topic: string, payload: string): string => JSON.stringify({ topic, payload, retain: true })
  const json = { 'content-type': 'application/json' }

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, allowedOrigins: APP })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'echo', password: await mintToken(['--sub', 'echo', '--serve', 'echo', '--secret', SECRET], {}) })
    token = await mintToken(['--sub', 'page', '--call', 'echo', '--publish', 'routes/#', '--subscribe', 'routes/#', '--secret', SECRET], {})
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  const tokenRows = HTTP_ROUTES.filter(r => r.auth === 'token')
  it.each(tokenRows.flatMap(r => {
    const { method, path } = EXAMPLES[r.url] as { method: string, path: string }
    const spellings = [path, encoded(path)]
    return spellings.flatMap(p => method === 'GET' ? [['GET', p], ['HEAD', p]] : [[method, p]])
  }))('%s %s without a token: 401, before the route runs', async (method, path) => {
    const res = await call(method, path, json, method === 'POST' ? retain('routes/unauth', 'x') : undefined)
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/)
  })

  it('an encoded POST /publish without a token published nothing', async () => {
    expect((await call('POST', encoded('/publish'), json, retain('routes/unauth', 'x'))).status).toBe(401)
    const read = await call('GET', '/retained/routes/unauth', bearer())
    expect(read.status).toBe(404)
    expect(read.json().error.code).toBe('RTW_NO_RETAINED')
  })

  it('with a token, each spelling reaches the same route and reads the same levels', async () => {
    expect((await call('POST', encoded('/publish'), { ...json, ...bearer() }, retain('routes/r', 'kept'))).status).toBeLessThan(300)
    for (const path of ['/retained/routes/r', encoded('/retained/routes/r')]) {
      const res = await call('GET', path, bearer())
      expect(res.status, path).toBe(200)
      expect(res.body.toString()).toBe('kept')
    }
    for (const path of ['/api/echo/x', encoded('/api/echo/x'), '/ap%69/echo/x']) {
      const res = await call('POST', path, { ...bearer(), 'content-type': 'text/plain' }, 'ping')
      expect(res.status, path).toBe(200)
      expect(res.body.toString(), path).toBe('ping')
    }
  })

  it('routes the table does not mark "token" answer without one', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200)
    const result = await call('GET', '/requests/nohandle')
    expect(result.status).toBe(404)
    expect(result.json().error.code).toBe('RTW_RESULT_NOT_FOUND')
  })

  const corsRows = HTTP_ROUTES.filter(r => r.cors !== undefined)
  it.each(corsRows.flatMap(r => {
    const { method, path } = EXAMPLES[r.url] as { method: string, path: string }
    return [[method, path], [method, encoded(path)]]
  }))('%s %s from an origin not allowed: 403, before the token check', async (method, path) => {
    const res = await call(method, path, { origin: 'https://evil.example', ...json }, method === 'POST' ? retain('routes/x', 'x') : undefined)
    expect(res.status).toBe(403)
    expect(res.json().error.code).toBe('RTW_ORIGIN_NOT_ALLOWED')
  })

  it.each(corsRows.map(r => [r.url, r.cors] as const))('a preflight for %s is answered with the methods of its row', async (url, methods) => {
    const { method, path } = EXAMPLES[url] as { method: string, path: string }
    for (const p of [path, encoded(path)]) {
      const res = await call('OPTIONS', p, { origin: APP, 'access-control-request-method': method })
      expect(res.status, p).toBe(204)
      expect(res.headers['access-control-allow-origin']).toBe(APP)
      expect(res.headers['access-control-allow-methods'], p).toBe(methods === '*' ? method : methods)
    }
  })

  it('a route not offered cross-origin makes no Origin check and adds no CORS headers', async () => {
    const res = await call('GET', '/healthz', { origin: 'https://evil.example' })
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
  })
})
