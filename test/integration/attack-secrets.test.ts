// Attacks on secrets: a token or key that leaks into the log, and a responder
// that would replay a caller's credentials. Real sockets, MQTT.js, ws and
// mosquitto_pub; the whole log of the run is captured and searched.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connackCode, connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { rawRequest, wsUpgrade as upgrade } from '../helpers/http.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'
import { redactSecrets } from '../../gateway/log-redact.js'

const run = promisify(execFile)
const SECRET = 'attack-secrets-hs256-' + randomBytes(8).toString('hex')
const KEY = randomBytes(32).toString('hex')
const SERVE_KEY = randomBytes(32).toString('hex')
const dir = mkdtempSync(join(tmpdir(), 'rtw-attack-secrets-'))
const keysFile = join(dir, 'keys.json')
writeFileSync(keysFile, JSON.stringify({
  keys: [
    { key: KEY, sub: 'backend', rtw: { call: ['echo'] } },
    { key: SERVE_KEY, sub: 'echo-service', rtw: { serve: ['echo', 'legacy'] } }
  ]
}))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const token = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})

/** Every log line the gateway writes, as text. */
function captureLog (): { stream: Writable, text: () => string } {
  const chunks: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { chunks.push(chunk.toString('utf8')); cb() } })
  return { stream, text: () => chunks.join('') }
}


describe('attack: reading tokens and keys out of the log', () => {
  let gw: TestGateway
  let echo: Responder
  const log = captureLog()

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, apiKeysFile: keysFile, allowedOrigins: 'https://app.example', logLevel: 'info' }, { logger: { level: 'trace', stream: log.stream } })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'echo', password: SERVE_KEY })
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('a run full of tokens and keys in URLs, headers and CONNECT passwords leaves none of them in the log', async () => {
    const jwt = await token('--sub', 'alice', '--call', 'echo')
    const expired = await token('--sub', 'alice', '--call', 'echo', '--ttl', '0s')
    const noGrants = await token('--sub', 'mallory')
    const port = gw.httpPort
    const statuses: number[] = []
    const req = async (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> => {
      const res = await rawRequest({ port, method, path, headers, ...(body === undefined ? {} : { body }) })
      statuses.push(res.status)
      return res.status
    }
    // The victims: a legitimate JWT caller and an API key caller are served as usual.
    expect(await req('POST', '/api/echo/x', { authorization: `Bearer ${jwt}` }, 'hi')).toBe(200)
    expect(await req('POST', '/api/echo/x', { authorization: `Bearer ${KEY}` }, 'hi')).toBe(200)
    // Credentials in the query string, refused (a token belongs in Authorization) and logged.
    // (Five kinds, two routes each: the log keeps 10 lines of a kind per 10 s.)
    for (const q of [`access_token=${jwt}`, `api_key=${KEY}`, `x=1&token=${jwt}&y=2`, `password=${KEY}`, `sig=${KEY}`]) {
      expect(await req('GET', `/api/echo/x?${q}`)).toBe(401)
      expect(await req('POST', `/publish?${q}`, { 'content-type': 'application/json' }, '{"topic":"a","payload":1}')).toBe(401)
    }
    // Bad, expired and under-privileged tokens in Authorization, with secrets in the URL too.
    expect(await req('GET', `/api/echo/x?access_token=${KEY}`, { authorization: `Bearer ${expired}` })).toBe(401)
    expect(await req('GET', `/api/echo/x?access_token=${jwt}`, { authorization: `Bearer ${noGrants}` })).toBe(403)
    expect(await req('GET', `/api/echo/x?access_token=${jwt}&timeout=abc`, { authorization: `Bearer ${jwt}` })).toBe(400)
    expect(await req('GET', `/api/echo/%zz?access_token=${KEY}`, { authorization: `Bearer ${jwt}` })).toBe(400)
    expect(await req('GET', `/api/echo/x?access_token=${KEY}`, { authorization: `Bearer ${KEY}x` })).toBe(401)
    expect(await req('GET', `/api/echo/x?access_token=${KEY}`, { origin: 'https://evil.example' })).toBe(403)
    expect(await req('GET', `/nowhere?access_token=${KEY}`)).toBe(404)
    expect(await req('GET', `/api/nobody/x?access_token=${KEY}`, { authorization: `Bearer ${jwt}` })).toBe(403)
    // WebSocket upgrades with a token in the URL, from a refused origin.
    expect((await upgrade(`${gw.wsUrl}?access_token=${jwt}`, { origin: 'https://evil.example' })).status).toBe(403)
    // MQTT: good, bad and expired passwords, from MQTT.js and from mosquitto_pub.
    expect(await connackCode(gw.mqttUrl, KEY)).toBe(0)
    expect(await connackCode(gw.mqttUrl, KEY + 'x')).toBe(4)
    expect(await connackCode(gw.mqttUrl, expired)).toBe(4)
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-u', 'u', '-P', jwt + 'x', '-t', 'a', '-m', 'x']).catch(() => {})

    await waitFor(() => log.text().includes('client aedes_'), { what: "mosquitto_pub's refusal in the log" })
    const text = log.text()
    // Not vacuous: the refusals were logged, with their URLs, redacted.
    expect(text).toContain('access_token=[REDACTED]')
    for (const name of ['api_key', 'token', 'password', 'sig']) expect(text).toContain(`${name}=[REDACTED]`)
    expect(text).toContain('/api/echo/x')
    for (const secret of [jwt, expired, noGrants, KEY, SERVE_KEY, SECRET]) {
      expect(text.includes(secret), 'a secret is in the log').toBe(false)
      // Nor any long piece of it (a JWT's signature, half a key).
      expect(text.includes(secret.slice(-24)), 'part of a secret is in the log').toBe(false)
    }
    expect(statuses.length).toBeGreaterThan(15)
  })
})

describe('redactSecrets', () => {
  it('keeps paths and parameter names, and hides credential values, passwords in URLs and Authorization credentials', () => {
    expect(redactSecrets('GET /api/echo/x?a=1&access_token=abc.def&b=2')).toBe('GET /api/echo/x?a=1&access_token=[REDACTED]&b=2')
    expect(redactSecrets('/x?apiKey=k&id_token=t&refresh_token=r&client_secret=s&page=3'))
      .toBe('/x?apiKey=[REDACTED]&id_token=[REDACTED]&refresh_token=[REDACTED]&client_secret=[REDACTED]&page=3')
    expect(redactSecrets('amqp://guest:hunter2@rabbit:5672/vh')).toBe('amqp://guest:[REDACTED]@rabbit:5672/vh')
    expect(redactSecrets('authorization: Bearer abc123 ok')).toBe('authorization: Bearer [REDACTED] ok')
    expect(redactSecrets('client dev-7: invalid token (JWSSignatureVerificationFailed)')).toBe('client dev-7: invalid token (JWSSignatureVerificationFailed)')
    expect(redactSecrets('path /api/x/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl')).toBe('path /api/x/[REDACTED]')
  })
})

describe('attack: a responder replays the credentials of the callers it serves', () => {
  let gw: TestGateway
  let anon: TestGateway
  let thief: Responder
  let legacy: Responder

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, apiKeysFile: keysFile, forwardCredentials: 'legacy' })
    // The "compromised" responder records what it is sent, and answers.
    thief = await Responder.start(gw.mqttUrl, '$req/echo/#', (req, r) => { void r.reply(req, { body: 'ok' }) }, { username: 'echo', password: SERVE_KEY })
    legacy = await Responder.start(gw.mqttUrl, '$req/legacy/#', (req, r) => { void r.reply(req, { body: 'ok' }) }, { username: 'echo', password: SERVE_KEY })
    anon = await startGateway()
  })
  afterAll(async () => {
    await thief?.close()
    await legacy?.close()
    await gw?.close()
    await anon?.close()
  })

  it('gets the caller\'s verified identity, but never its Authorization or Cookie header', async () => {
    const jwt = await mintToken(['--sub', 'alice', '--call', 'echo', '--call', 'legacy', '--iss', 'idp', '--aud', 'rtw', '--secret', SECRET], {})
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: `Bearer ${jwt}`, cookie: 'session=s3cr3t', 'x-kept': '1' }, body: 'hi' })
    expect(res.status).toBe(200)
    const keyed = await rawRequest({ port: gw.httpPort, method: 'GET', path: '/api/echo/y', headers: { authorization: `Bearer ${KEY}` } })
    expect(keyed.status).toBe(200)
    const [fromJwt, fromKey] = await thief.waitForRequests(2)
    expect(fromJwt?.raw.includes(jwt)).toBe(false)
    expect(fromJwt?.raw.includes('s3cr3t')).toBe(false)
    expect(fromJwt?.env.headers).toEqual(expect.objectContaining({ 'x-kept': '1' }))
    expect(fromJwt?.env.headers).not.toHaveProperty('authorization')
    expect(fromJwt?.env.headers).not.toHaveProperty('cookie')
    expect(fromJwt?.env.caller).toEqual({ sub: 'alice', via: 'jwt', iss: 'idp', aud: 'rtw', exp: expect.any(Number) })
    expect(fromKey?.raw.includes(KEY)).toBe(false)
    expect(fromKey?.env.caller).toEqual({ sub: 'backend', via: 'api-key' })
    // The stolen nothing: the responder cannot call as alice with what it was sent.
    const replay = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: fromJwt?.env.headers.authorization ?? '' }, body: 'as alice' })
    expect(replay.status).toBe(401)
  })

  it('an MQTT-native caller is named too (with its client id), and the headers it sends lose their credentials', async () => {
    const jwt = await mintToken(['--sub', 'alice', '--call', 'echo', '--secret', SECRET], {})
    const caller = await connectClient(gw.mqttUrl, { clientId: 'alice-phone', username: 'u', password: jwt })
    try {
      await subscribe(caller, '$inbox/alice-phone/#')
      const answer = nextMessage(caller, t => t === '$inbox/alice-phone/r')
      caller.publish('$req/echo/m', JSON.stringify({ id: 'm1', replyTo: '$inbox/alice-phone/r', headers: { authorization: `Bearer ${jwt}`, cookie: 'c=1', 'x-kept': 'y' }, body: 'q' }))
      expect(JSON.parse((await answer).payload.toString())).toMatchObject({ id: 'm1', status: 200 })
      const req = thief.requests.find(r => r.env.path === '/m')
      expect(req?.raw.includes(jwt)).toBe(false)
      expect(req?.env.headers).toEqual({ 'x-kept': 'y' })
      expect(req?.env.caller).toEqual({ sub: 'alice', via: 'jwt', exp: expect.any(Number), clientId: 'alice-phone' })
    } finally {
      await caller.endAsync(true)
    }
  })

  it('a service listed in forwardCredentials gets them, as documented', async () => {
    const jwt = await mintToken(['--sub', 'alice', '--call', 'legacy', '--secret', SECRET], {})
    const res = await rawRequest({ port: gw.httpPort, method: 'GET', path: '/api/legacy/x', headers: { authorization: `Bearer ${jwt}`, cookie: 'c=1' } })
    expect(res.status).toBe(200)
    const [req] = await legacy.waitForRequests(1)
    expect(req?.env.headers).toMatchObject({ authorization: `Bearer ${jwt}`, cookie: 'c=1' })
    expect(req?.env.caller?.sub).toBe('alice')
  })

  it('without auth there is no caller identity, and credentials are still removed', async () => {
    const r = await Responder.start(anon.mqttUrl, '$req/echo/#', (req, rr) => { void rr.reply(req, { body: 'ok' }) })
    try {
      const res = await rawRequest({ port: anon.httpPort, method: 'GET', path: '/api/echo/x', headers: { authorization: 'Basic dXNlcjpwYXNz', cookie: 'c=1' } })
      expect(res.status).toBe(200)
      const [req] = await r.waitForRequests(1)
      expect(req?.env).not.toHaveProperty('caller')
      expect(req?.env.headers).not.toHaveProperty('authorization')
      expect(req?.env.headers).not.toHaveProperty('cookie')
    } finally {
      await r.close()
    }
  })
})
