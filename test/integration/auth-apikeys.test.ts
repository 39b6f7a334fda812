// Static API keys [P-11.9]: a key from the key file stands where a JWT stands,
// on REST (Authorization: Bearer) and MQTT (CONNECT password), with its grants.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, nextMessage, subscribe, connackCode } from '../helpers/mqtt.js'
import { startProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { ConfigError, loadConfig } from '../../gateway/config.js'
import { mintToken } from '../../gateway/cli/token.js'
import { echo } from '../../echo-server/echo.js'

const dir = mkdtempSync(join(tmpdir(), 'rtw-apikeys-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const newKey = (): string => randomBytes(32).toString('hex')
const KEYS = {
  echo: newKey(), // serves echo
  caller: newKey(), // calls echo
  billing: newKey(), // calls billing only
  device: newKey(), // publishes and subscribes under devices/<sub>/…
  none: newKey() // no grants
}

let n = 0
function keyFile (content: unknown): string {
  const p = join(dir, `keys${n++}.json`)
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
  return p
}

const FILE = keyFile({
  keys: [
    { key: KEYS.echo, sub: 'echo-service', rtw: { serve: ['echo'] } },
    { key: KEYS.caller, sub: 'web-backend', rtw: { call: ['echo'] } },
    { key: KEYS.billing, sub: 'billing-client', rtw: { call: ['billing'] } },
    { key: KEYS.device, sub: 'thermo-1', rtw: { publish: ['devices/${sub}/#'], subscribe: ['devices/${sub}/#'], call: ['echo'] } },
    { key: KEYS.none, sub: 'nobody' }
  ]
})

async function startEcho (gw: TestGateway, password: string): Promise<MqttClient> {
  const c = await connectClient(gw.mqttUrl, { username: 'echo', password })
  await subscribe(c, '$req/echo/#')
  c.on('message', (t, p) => { const o = echo(t, p); if (o !== null) c.publish(o.topic, o.payload) })
  return c
}

const call = async (gw: TestGateway, service: string, auth?: string): Promise<Response> => await fetch(`${gw.httpUrl}/api/${service}/x`, {
  method: 'POST', body: 'hi', headers: auth === undefined ? {} : { authorization: auth }
})

function run (cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number, out: string }> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: 20_000, ...(env === undefined ? {} : { env }) },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, out: stdout + stderr }))
  })
}

describe('API keys alone (no JWT key material)', () => {
  let gw: TestGateway
  let responder: MqttClient
  const clients: MqttClient[] = []
  beforeAll(async () => {
    gw = await startGateway({ apiKeysFile: FILE })
    // The MQTT responder authenticates with its key as the password and serves.
    responder = await startEcho(gw, KEYS.echo)
  })
  afterEach(async () => { await Promise.all(clients.splice(0).map(c => c.endAsync(true))) })
  afterAll(async () => {
    await responder.endAsync()
    await gw.close()
  })

  it('a REST call is allowed by the key\'s call grant and answered by the key-authenticated responder', async () => {
    const res = await call(gw, 'echo', `Bearer ${KEYS.caller}`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('hi')
  })

  it('a REST call the key does not grant is 403 RTW_FORBIDDEN', async () => {
    for (const key of [KEYS.billing, KEYS.none, KEYS.echo]) {
      const res = await call(gw, 'echo', `Bearer ${key}`)
      expect(res.status).toBe(403)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_FORBIDDEN')
    }
  })

  it('an unknown key, a near miss, a JWT and no token are 401 RTW_UNAUTHORIZED', async () => {
    const jwt = await mintToken(['--sub', 'x', '--call', 'echo', '--secret', 'whatever-secret'], {})
    const nearMiss = KEYS.caller.slice(0, -1) + (KEYS.caller.endsWith('0') ? '1' : '0')
    for (const auth of [`Bearer ${newKey()}`, `Bearer ${nearMiss}`, `Bearer ${KEYS.caller}x`, `Bearer ${jwt}`, `Basic ${KEYS.caller}`, undefined]) {
      const res = await call(gw, 'echo', auth)
      expect(res.status, String(auth)).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_UNAUTHORIZED')
    }
  })

  it('publish and retained reads over REST follow the key\'s publish and subscribe grants', async () => {
    const publish = (key: string, topic: string): Promise<Response> => fetch(`${gw.httpUrl}/publish`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: '21.5', retain: true })
    })
    expect((await publish(KEYS.device, 'devices/thermo-1/temp')).status).toBe(202)
    expect((await publish(KEYS.device, 'devices/thermo-2/temp')).status).toBe(403)
    expect((await fetch(`${gw.httpUrl}/retained/devices/thermo-1/temp`, { headers: { authorization: `Bearer ${KEYS.device}` } })).status).toBe(200)
    expect((await fetch(`${gw.httpUrl}/retained/devices/thermo-1/temp`, { headers: { authorization: `Bearer ${KEYS.caller}` } })).status).toBe(403)
  })

  it('MQTT: a key is the CONNECT password under any user name; an unknown key is CONNACK 4, none is 5', async () => {
    expect(await connackCode(gw.mqttUrl, KEYS.none)).toBe(0)
    expect(await connackCode(gw.mqttUrl, newKey())).toBe(4)
    expect(await connackCode(gw.mqttUrl, await mintToken(['--sub', 'x', '--secret', 'whatever-secret'], {}))).toBe(4)
    expect(await connackCode(gw.mqttUrl, undefined)).toBe(5)
  })

  it('MQTT over WebSocket takes a key as the password too', async () => {
    const ws = await connectClient(gw.wsUrl, { username: 'browser', password: KEYS.device })
    clients.push(ws)
    expect(await grantedQos(ws, ['devices/thermo-1/#', 'devices/thermo-2/#'])).toEqual([1, 128])
    expect(await connackCode(gw.wsUrl, newKey())).toBe(4)
  })

  it('MQTT: the key\'s grants decide what it may serve and subscribe to, with ${sub} expanded', async () => {
    const server = await connectClient(gw.mqttUrl, { username: 'svc', password: KEYS.echo })
    const device = await connectClient(gw.mqttUrl, { username: 'dev', password: KEYS.device })
    const nobody = await connectClient(gw.mqttUrl, { username: 'x', password: KEYS.none })
    clients.push(server, device, nobody)
    expect(await grantedQos(server, ['$req/echo/#', '$req/billing/#', '$req/#'])).toEqual([1, 128, 128])
    expect(await grantedQos(device, ['devices/thermo-1/#', 'devices/thermo-2/#', '$req/echo/#'])).toEqual([1, 128, 128])
    expect(await grantedQos(nobody, ['$req/echo/#', '#', `$inbox/${nobody.options.clientId}/#`])).toEqual([128, 128, 1])
  })

  it('MQTT: a key-authenticated caller calls a key-authenticated responder, and gets 403 for what it may not call', async () => {
    const caller = await connectClient(gw.mqttUrl, { username: 'dev', password: KEYS.device, clientId: 'thermo-1-conn' })
    clients.push(caller)
    await subscribe(caller, '$inbox/thermo-1-conn/#')
    const ok = nextMessage(caller, t => t === '$inbox/thermo-1-conn/a')
    caller.publish('$req/echo/x', JSON.stringify({ id: 'a', replyTo: '$inbox/thermo-1-conn/a', body: 'ping' }))
    expect(JSON.parse((await ok).payload.toString())).toMatchObject({ id: 'a', status: 200, body: 'ping' })
    const denied = nextMessage(caller, t => t === '$inbox/thermo-1-conn/b')
    caller.publish('$req/billing/x', JSON.stringify({ id: 'b', replyTo: '$inbox/thermo-1-conn/b' }))
    expect(JSON.parse((await denied).payload.toString()).status).toBe(403)
  })

  it('mosquitto_pub and mosquitto_sub authenticate with a key as the password', async () => {
    const port = String(gw.mqttPort)
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', 'thermo', '-P', KEYS.device, '-t', 'devices/thermo-1/cmd', '-C', '1', '-W', '8'])
    await waitFor(() => gw.app.broker.subscriptions.hasMatch('devices/thermo-1/cmd'), { what: 'mosquitto_sub to subscribe' })
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'thermo', '-P', KEYS.device, '-t', 'devices/thermo-1/cmd', '-m', 'on', '-q', '1'])
    expect(pub.code).toBe(0)
    expect((await sub).out.trim()).toBe('on')
    const refused = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'thermo', '-P', newKey(), '-t', 'devices/thermo-1/cmd', '-m', 'x'])
    expect(refused.code).not.toBe(0)
    expect(refused.out).toMatch(/bad user name or password/i)
  })

  it('the echo server process serves with a key in ECHO_TOKEN', async () => {
    const proc = startProcess('node', ['dist/echo-server/main.js'], {
      env: { RTW_HOST: '127.0.0.1', RTW_MQTT_PORT: String(gw.mqttPort), ECHO_MQTT_URL: undefined, ECHO_TOKEN: KEYS.echo, ECHO_TOPICS: '$req/echo/#' }
    })
    try {
      // The in-test responder goes, so the answer below can only come from the process.
      await responder.endAsync()
      await waitFor(() => gw.app.broker.subscriptions.hasMatch('$req/echo/x'), { timeoutMs: 15_000, what: 'the echo server to subscribe' })
      const res = await call(gw, 'echo', `Bearer ${KEYS.caller}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('x-echo-method')).toBe('POST')
      expect(await res.text()).toBe('hi')
    } finally {
      await proc.killGroup()
      responder = await startEcho(gw, KEYS.echo)
    }
  })
})

describe('API keys and JWTs side by side', () => {
  const SECRET = 'auth-apikeys-test-secret'
  const jwt = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET, apiKeysFile: FILE }) })
  afterAll(async () => { await gw.close() })

  it('a key-authenticated responder answers a JWT caller, and a JWT responder answers a key caller', async () => {
    const keyServer = await startEcho(gw, KEYS.echo)
    try {
      const res = await call(gw, 'echo', `Bearer ${await jwt('--sub', 'web', '--call', 'echo')}`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('hi')
    } finally {
      await keyServer.endAsync()
    }
    const jwtServer = await startEcho(gw, await jwt('--sub', 'echo', '--serve', 'echo'))
    try {
      const res = await call(gw, 'echo', `Bearer ${KEYS.caller}`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('hi')
      expect((await call(gw, 'echo', `Bearer ${KEYS.billing}`)).status).toBe(403)
    } finally {
      await jwtServer.endAsync()
    }
  })

  it('JWTs keep their checks: a forged or expired JWT and an unknown key are 401 and CONNACK 4', async () => {
    const forged = await mintToken(['--sub', 'x', '--call', 'echo', '--secret', 'another-secret'], {})
    const expired = await jwt('--sub', 'x', '--call', 'echo', '--ttl', '0s')
    for (const t of [forged, expired, newKey()]) {
      expect((await call(gw, 'echo', `Bearer ${t}`)).status).toBe(401)
      expect(await connackCode(gw.mqttUrl, t)).toBe(4)
    }
    expect(await connackCode(gw.mqttUrl, KEYS.none)).toBe(0)
    expect(await connackCode(gw.mqttUrl, await jwt('--sub', 'x'))).toBe(0)
  })
})

describe('API key file validation at start-up', () => {
  function fails (file: string, message: RegExp): void {
    let err: unknown
    try {
      loadConfig({ env: { RTW_API_KEYS_FILE: file } })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).code).toBe('RTW_CONFIG_INVALID')
    expect((err as Error).message).toMatch(message)
    // A key never appears in an error message.
    for (const k of Object.values(KEYS)) expect((err as Error).message).not.toContain(k)
  }

  it('refuses an unreadable file, bad JSON, a duplicate key and a short key, with a clear message', () => {
    fails(join(dir, 'missing.json'), /apiKeysFile .*missing\.json: cannot read it \(ENOENT/)
    fails(keyFile('{"keys": ['), /apiKeysFile .*: not valid JSON/)
    fails(keyFile({ keys: [{ key: KEYS.echo, sub: 'a' }, { key: KEYS.caller, sub: 'b' }, { key: KEYS.echo, sub: 'c' }] }), /keys\[2\]\.key duplicates keys\[0\]\.key/)
    fails(keyFile({ keys: [{ key: 'short-secret', sub: 'a' }] }), /keys\[0\]\.key is too short: 12 characters, at least 32/)
  })

  it('accepts a good file given by env, flag or config file, and it turns auth on like jwtSecret', () => {
    expect(loadConfig({ env: { RTW_API_KEYS_FILE: FILE } }).config.apiKeysFile).toBe(FILE)
    expect(loadConfig({ argv: ['--api-keys-file', FILE] }).config.apiKeysFile).toBe(FILE)
    expect(loadConfig({ file: keyFile({ apiKeysFile: FILE }) }).config.apiKeysFile).toBe(FILE)
    // [P-11.5] a non-loopback address needs auth, and a key file is auth.
    expect(loadConfig({ env: { RTW_HOST: '0.0.0.0', RTW_API_KEYS_FILE: FILE } }).config.host).toBe('0.0.0.0')
    expect(() => loadConfig({ env: { RTW_HOST: '0.0.0.0' } })).toThrow(/RTW_API_KEYS_FILE/)
  })

  it('the gateway process exits with RTW_CONFIG_INVALID and the reason', async () => {
    const bad = keyFile({ keys: [{ key: 'x'.repeat(31), sub: 'a' }] })
    const result = await run(process.execPath, ['dist/gateway/main.js', '--api-keys-file', bad], {
      ...process.env, RTW_HTTP_PORT: '0', RTW_MQTT_PORT: '0', RTW_JWT_SECRET: '', RTW_API_KEYS_FILE: ''
    })
    expect(result.code).toBe(78) // EX_CONFIG: pm2 does not restart into it
    expect(result.out).toMatch(/RTW_CONFIG_INVALID: apiKeysFile .*keys\[0\]\.key is too short: 31 characters/)
  })
})
