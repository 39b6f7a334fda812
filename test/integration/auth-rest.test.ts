// REST auth (Authorization: Bearer), key types and claim checks, and the safe
// default for non-loopback binding (PROTOCOL.md §11).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { ConfigError, loadConfig } from '../../gateway/config.js'
import { mintToken } from '../../gateway/cli/token.js'

const SECRET = 'auth-rest-test-secret'
const token = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})

describe('REST auth with HS256', () => {
  let gw: TestGateway
  let responder: Responder
  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, jwtAudience: 'rtw', jwtIssuer: 'tests' })
    responder = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'echo', password: await token('--sub', 'echo', '--serve', 'echo', '--aud', 'rtw', '--iss', 'tests') })
  })
  afterAll(async () => {
    await responder.close()
    await gw.close()
  })

  const call = async (auth?: string): Promise<Response> => await fetch(`${gw.httpUrl}/api/echo/x`, {
    method: 'POST', body: 'hi', headers: auth === undefined ? {} : { authorization: auth }
  })

  it('answers 401 RTW_UNAUTHORIZED without a token, with a bad one, and with an expired one', async () => {
    for (const auth of [undefined, 'Bearer nope', 'Basic abc', `Bearer ${await token('--sub', 'x', '--call', 'echo', '--ttl', '0s', '--aud', 'rtw', '--iss', 'tests')}`]) {
      const res = await call(auth)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_UNAUTHORIZED')
    }
  })

  it('checks aud and iss', async () => {
    expect((await call(`Bearer ${await token('--sub', 'x', '--call', 'echo', '--aud', 'other', '--iss', 'tests')}`)).status).toBe(401)
    expect((await call(`Bearer ${await token('--sub', 'x', '--call', 'echo', '--aud', 'rtw', '--iss', 'someone')}`)).status).toBe(401)
    expect((await call(`Bearer ${await token('--sub', 'x', '--call', 'echo')}`)).status).toBe(401)
  })

  it('checks nbf', async () => {
    const now = Math.floor(Date.now() / 1000)
    const early = await new SignJWT({ rtw: { call: ['echo'] } }).setProtectedHeader({ alg: 'HS256' })
      .setSubject('x').setAudience('rtw').setIssuer('tests').setNotBefore(now + 3600).setExpirationTime(now + 7200)
      .sign(new TextEncoder().encode(SECRET))
    expect((await call(`Bearer ${early}`)).status).toBe(401)
  })

  it('answers 403 RTW_FORBIDDEN for a service the token may not call, and 200 for one it may', async () => {
    const other = await call(`Bearer ${await token('--sub', 'x', '--call', 'billing', '--aud', 'rtw', '--iss', 'tests')}`)
    expect(other.status).toBe(403)
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('RTW_FORBIDDEN')
    const ok = await call(`Bearer ${await token('--sub', 'x', '--call', 'echo', '--aud', 'rtw', '--iss', 'tests')}`)
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('hi')
  })

  it('publish and retained reads follow the publish and subscribe grants', async () => {
    const writer = await token('--sub', 'w', '--publish', 'news/#', '--aud', 'rtw', '--iss', 'tests')
    const publish = (auth: string, topic: string): Promise<Response> => fetch(`${gw.httpUrl}/publish`, {
      method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: 'x', retain: true })
    })
    expect((await publish(writer, 'news/today')).status).toBe(202)
    expect((await publish(writer, 'alerts/today')).status).toBe(403)
    const reader = await token('--sub', 'r', '--subscribe', 'news/+', '--aud', 'rtw', '--iss', 'tests')
    expect((await fetch(`${gw.httpUrl}/retained/news/today`, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(200)
    expect((await fetch(`${gw.httpUrl}/retained/news/today`, { headers: { authorization: `Bearer ${writer}` } })).status).toBe(403)
    expect((await fetch(`${gw.httpUrl}/retained/news/today`)).status).toBe(401)
  })

  it('leaves health endpoints open', async () => {
    expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)
  })
})

describe('RS256 and ES256 tokens', () => {
  it('verifies RS256 with a PEM public key and ES256 from a JWKS file by kid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtw-keys-'))
    const rsa = await generateKeyPair('RS256', { extractable: true })
    const ec = await generateKeyPair('ES256', { extractable: true })
    writeFileSync(join(dir, 'rsa.pub.pem'), await exportSPKI(rsa.publicKey))
    writeFileSync(join(dir, 'rsa.pem'), await exportPKCS8(rsa.privateKey))
    writeFileSync(join(dir, 'ec.pem'), await exportPKCS8(ec.privateKey))
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }] }))

    const pem = await startGateway({ jwtPublicKeyFile: join(dir, 'rsa.pub.pem') })
    const jwks = await startGateway({ jwksFile: join(dir, 'jwks.json') })
    try {
      const rsToken = await mintToken(['--sub', 'r', '--call', 'echo', '--key', join(dir, 'rsa.pem'), '--alg', 'RS256'], {})
      const esToken = await mintToken(['--sub', 'e', '--call', 'echo', '--key', join(dir, 'ec.pem'), '--alg', 'ES256', '--kid', 'ec-1'], {})
      const hsToken = await mintToken(['--sub', 'h', '--call', 'echo', '--secret', 'x'], {})
      // A valid token reaches the bridge (404: no responder), an unacceptable one stops at 401.
      const status = async (gw: TestGateway, t: string): Promise<number> =>
        (await fetch(`${gw.httpUrl}/api/echo/x`, { headers: { authorization: `Bearer ${t}` } })).status
      expect(await status(pem, rsToken)).toBe(404)
      expect(await status(pem, esToken)).toBe(401)
      expect(await status(pem, hsToken)).toBe(401)
      expect(await status(jwks, esToken)).toBe(404)
      expect(await status(jwks, rsToken)).toBe(401)
    } finally {
      await pem.close()
      await jwks.close()
    }
  })
})

describe('safe defaults', () => {
  it('refuses a non-loopback address without auth unless anonymous is asked for', () => {
    expect(() => loadConfig({ env: { RTW_HOST: '0.0.0.0' } })).toThrow(ConfigError)
    expect(() => loadConfig({ env: { RTW_HOST: '0.0.0.0' } })).toThrow(/--allow-anonymous/)
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0', RTW_ALLOW_ANONYMOUS: '1' } }).config.allowAnonymous).toBe(true)
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0' }, argv: ['--allow-anonymous'] }).config.allowAnonymous).toBe(true)
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0', RTW_JWT_SECRET: 's' } }).config.host).toBe('0.0.0.0')
    expect(loadConfig({ env: { RTW_HOST: '127.0.0.2' } }).config.host).toBe('127.0.0.2')
    expect(loadConfig({ env: { RTW_HOST: '::1' } }).config.host).toBe('::1')
  })

  it('the gateway process exits with the reason when started that way', async () => {
    const { execFile } = await import('node:child_process')
    const result = await new Promise<{ code: number | null, out: string }>(resolve => {
      execFile(process.execPath, ['dist/gateway/main.js'], { env: { ...process.env, RTW_HOST: '0.0.0.0', RTW_HTTP_PORT: '0', RTW_MQTT_PORT: '0', RTW_JWT_SECRET: '' }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? null, out: stdout + stderr }))
    })
    expect(result.code).toBe(78) // EX_CONFIG: pm2 does not restart into it
    expect(result.out).toMatch(/RTW_CONFIG_INVALID: refusing to listen on 0\.0\.0\.0 without auth/)
  })
})
