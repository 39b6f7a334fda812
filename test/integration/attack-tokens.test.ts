// Attacks with crafted tokens: a subject or client id that would widen a
// templated grant [P-11.3], and a token that never expires [P-11.1]. Real
// MQTT.js and mosquitto_sub clients, real HTTP.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connackCode, connectClient, grantedQos, nextMessage, subscribe } from '../helpers/mqtt.js'
import { rawRequest } from '../helpers/http.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { mintToken } from '../../gateway/cli/token.js'

const run = promisify(execFile)
const SECRET = 'attack-tokens-secret'
const token = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})

/** A token signed with the gateway's secret, with exactly these claims (no exp unless given). */
async function craft (claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(SECRET))
}

describe('attack: a subject or client id that widens a templated grant [P-11.3]', () => {
  let gw: TestGateway
  let echo: Responder
  const clients: MqttClient[] = []
  const mqttAs = async (password: string, clientId: string): Promise<MqttClient> => {
    const c = await connectClient(gw.mqttUrl, { username: 'u', password, clientId })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'e', password: await token('--sub', 'echo-svc', '--serve', 'echo') })
  })
  afterEach(async () => { await Promise.all(clients.splice(0).map(c => c.endAsync(true))) })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('sub "*" with call/serve ["${sub}"] may call and serve nothing; a real caller is served as before', async () => {
    const evil = await craft({ sub: '*', exp: Math.floor(Date.now() / 1000) + 600, rtw: { call: ['${sub}'], serve: ['${sub}'], subscribe: ['${sub}/#'], publish: ['${sub}/#'] } })
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: `Bearer ${evil}` }, body: 'x' })
    expect(res.status).toBe(403)
    const attacker = await mqttAs(evil, 'attacker-1')
    expect(await grantedQos(attacker, ['$req/+/#', '$req/#', '$req/echo/#', '*/#', '#'])).toEqual([128, 128, 128, 128, 128])
    expect(echo.requests).toHaveLength(0)
    // The victim (a caller with a real grant) is unaffected.
    const alice = await token('--sub', 'alice', '--call', 'echo')
    const ok = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: `Bearer ${alice}` }, body: 'hi' })
    expect(ok.status).toBe(200)
    expect(ok.body.toString()).toBe('hi')
  })

  it.each(['+', '#', '$SYS', 'a/b', ''])('sub %j cannot reach other users\' topics through users/${sub}/#', async (sub) => {
    const victim = await mqttAs(await token('--sub', 'bob', '--subscribe', 'users/${sub}/#'), 'bob-phone')
    await subscribe(victim, 'users/bob/#')
    const evil = await craft({ sub, exp: Math.floor(Date.now() / 1000) + 600, rtw: { subscribe: ['users/${sub}/#', '${sub}/#'], publish: ['users/${sub}/#'] } })
    const attacker = await mqttAs(evil, `attacker-${randomBytes(3).toString('hex')}`)
    expect(await grantedQos(attacker, ['users/+/#', 'users/#', 'users/bob/#', '$SYS/#'])).toEqual([128, 128, 128, 128])
    // Its publish into bob's topics is dropped; bob gets only what bob is sent.
    const got = nextMessage(victim, t => t.startsWith('users/bob/'))
    await attacker.publishAsync('users/bob/x', 'forged', { qos: 1 })
    const friend = await mqttAs(await token('--sub', 'carol', '--publish', 'users/bob/#'), 'carol-1')
    await friend.publishAsync('users/bob/x', 'real', { qos: 1 })
    expect((await got).payload.toString()).toBe('real')
  })

  it('a client id of "+" or "#" voids ${clientid} grants, seen with mosquitto_sub', async () => {
    const t = await token('--sub', 'dev', '--subscribe', 'devices/${clientid}/#')
    for (const id of ['+', '#']) {
      // -E exits once the SUBACK came; -d prints the granted QoS (128 = refused).
      const { stdout } = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', '311', '-i', id, '-u', 'u', '-P', t, '-t', 'devices/+/#', '-E', '-d'])
      expect(stdout).toMatch(/Subscribed \(mid: \d+\): 128/)
    }
    const own = await mqttAs(t, 'dev-9')
    expect(await grantedQos(own, ['devices/dev-9/#', 'devices/+/#'])).toEqual([1, 128])
  })
})

describe('attack: a token that never expires [P-11.1]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtw-attack-tokens-'))
  const KEY = randomBytes(32).toString('hex')
  const keys = join(dir, 'keys.json')
  writeFileSync(keys, JSON.stringify({ keys: [{ key: KEY, sub: 'svc', rtw: { call: ['echo'] } }] }))
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, apiKeysFile: keys })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'e', password: await token('--sub', 'echo-svc', '--serve', 'echo') })
  })
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a JWT without exp is refused clearly, on REST (401) and MQTT (CONNACK 4); API keys stay exempt', async () => {
    const forever = await craft({ sub: 'mallory', rtw: { call: ['echo'] } })
    const res = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: `Bearer ${forever}` }, body: 'x' })
    expect(res.status).toBe(401)
    expect(res.json().error.message).toMatch(/no exp claim.*jwtRequireExp/)
    expect(await connackCode(gw.mqttUrl, forever)).toBe(4)
    expect(echo.requests).toHaveLength(0)
    // Keys never expire, by design; a JWT with exp works as before.
    const keyed = await rawRequest({ port: gw.httpPort, method: 'POST', path: '/api/echo/x', headers: { authorization: `Bearer ${KEY}` }, body: 'k' })
    expect(keyed.status).toBe(200)
    expect(await connackCode(gw.mqttUrl, KEY)).toBe(0)
    expect(await connackCode(gw.mqttUrl, await token('--sub', 'ok'))).toBe(0)
  })

  it('jwtRequireExp false accepts it, for deployments that want that', async () => {
    const lax = await startGateway({ jwtSecret: SECRET, jwtRequireExp: false })
    try {
      expect(await connackCode(lax.mqttUrl, await craft({ sub: 'legacy' }))).toBe(0)
    } finally {
      await lax.close()
    }
  })
})
