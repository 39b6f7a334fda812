// Attack: DNS rebinding [P-11.10]. A page on evil.example whose name was
// re-pointed at 127.0.0.1 is same-origin with itself (Origin and Host agree),
// so only its Host header tells it apart. Real sockets, ws and MQTT.js.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { rawRequest, wsUpgrade as upgrade, type RawResponse } from '../helpers/http.js'
import { connectClient, recordMessages, subscribe } from '../helpers/mqtt.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'


const rebound = (port: number): Record<string, string> => ({ host: `evil.example:${port}`, origin: `http://evil.example:${port}` })

describe('attack: DNS rebinding against an anonymous loopback gateway', () => {
  let gw: TestGateway
  let echo: Responder
  let victim: MqttClient
  const call = async (path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<RawResponse> =>
    await rawRequest({ port: gw.httpPort, method, path, headers, ...(body === undefined ? {} : { body }) })

  beforeAll(async () => {
    gw = await startGateway()
    echo = await startEcho(gw.mqttUrl)
    victim = await connectClient(gw.mqttUrl, { clientId: 'victim' })
    await subscribe(victim, 'home/#')
  })
  afterAll(async () => {
    await victim?.endAsync(true)
    await echo?.close()
    await gw?.close()
  })

  it('a rebound page gets 421 RTW_HOST_NOT_ALLOWED on REST, and neither the responder nor any subscriber hears of it', async () => {
    const seen = recordMessages(victim)
    const port = gw.httpPort
    for (const [method, path, body] of [['POST', '/api/echo/unlock', 'x'], ['POST', '/publish', '{"topic":"home/door","payload":"open"}'], ['GET', '/stats', undefined], ['GET', '/', undefined]] as const) {
      const res = await call(path, { ...rebound(port), 'content-type': 'application/json' }, method, body)
      expect(res.status, `${method} ${path}`).toBe(421)
      expect(res.json().error.code).toBe('RTW_HOST_NOT_ALLOWED')
    }
    // The same calls addressed to the gateway's own names work, so the refusals were the Host check.
    const ok = await call('/publish', { host: `127.0.0.1:${port}`, 'content-type': 'application/json' }, 'POST', '{"topic":"home/ok","payload":"1"}')
    expect(ok.status).toBe(200)
    await waitFor(() => seen.some(m => m.topic === 'home/ok'), { what: 'the legitimate publish' })
    expect(seen.map(m => m.topic)).toEqual(['home/ok'])
    expect(echo.requests).toHaveLength(0)
  })

  it('a rebound page cannot open MQTT over WebSocket: 421 before the handshake, and the victim stays connected', async () => {
    const before = gw.app.broker.aedes.connectedClients
    const r = await upgrade(gw.wsUrl, rebound(gw.httpPort))
    expect(r.status).toBe(421)
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'RTW_HOST_NOT_ALLOWED' } })
    expect(gw.app.broker.aedes.connectedClients).toBe(before)
    expect(victim.connected).toBe(true)
  })

  it('loopback names are served, with any port', async () => {
    const port = gw.httpPort
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`, `127.1.2.3:${port}`, 'app.localhost', 'localhost.']) {
      expect((await call('/healthz', { host })).status, host).toBe(200)
    }
    expect((await upgrade(gw.wsUrl, { host: `localhost:${port}` })).status).toBe(101)
    // Names that merely contain a loopback name are not loopback.
    for (const host of ['127.0.0.1.evil.example', 'localhost.evil.example', 'evil-localhost', '[::1].evil.example', '0.0.0.0']) {
      expect((await call('/healthz', { host })).status, host).toBe(421)
    }
  })
})

describe('allowedHosts', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ allowedHosts: 'gw.example, .corp.example' }) })
  afterAll(async () => { await gw?.close() })

  it('adds exact names and, with a leading dot, a domain and its subdomains', async () => {
    const status = async (host: string): Promise<number> => (await rawRequest({ port: gw.httpPort, path: '/healthz', headers: { host } })).status
    expect(await status('gw.example:8080')).toBe(200)
    expect(await status('corp.example')).toBe(200)
    expect(await status('a.b.corp.example')).toBe(200)
    expect(await status('localhost')).toBe(200)
    expect(await status('evil.example')).toBe(421)
    expect(await status('xcorp.example')).toBe(421)
    expect(await status('gw.example.evil')).toBe(421)
    expect((await upgrade(gw.wsUrl, { host: 'a.corp.example' })).status).toBe(101)
    expect((await upgrade(gw.wsUrl, { host: 'evil.example' })).status).toBe(421)
  })
})

describe('where the Host check does not apply', () => {
  it('"*" turns it off', async () => {
    const gw = await startGateway({ allowedHosts: '*' })
    try {
      expect((await rawRequest({ port: gw.httpPort, path: '/healthz', headers: { host: 'evil.example' } })).status).toBe(200)
    } finally {
      await gw.close()
    }
  })

  it('with auth on it is off unless allowedHosts is set: a rebound page has no token to use', async () => {
    const secret = 'rebinding-secret'
    const gw = await startGateway({ jwtSecret: secret })
    const echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'e', password: await mintToken(['--sub', 'echo', '--serve', 'echo', '--secret', secret], {}) })
    try {
      const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: rebound(gw.httpPort), body: 'x' })
      expect(res.status).toBe(401)
      expect(echo.requests).toHaveLength(0)
    } finally {
      await echo.close()
      await gw.close()
    }
  })
})
