// Attack: client id takeover [P-4.7], [P-4.8]. With auth on, a client id
// belongs to the subject that created its session; without auth, a
// responder's or a persistent session's id belongs to its address for
// takeoverGraceMs. Real MQTT.js, mosquitto_sub, HTTP.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connackOf, connectClient, connectFrom, nextMessage, recordMessages, subscribe } from '../helpers/mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { onceWithin, waitFor } from '../helpers/wait.js'
import { connectPacket, rawConnect } from '../helpers/raw-mqtt.js'
import { mintToken } from '../../gateway/cli/token.js'

const run = promisify(execFile)
const SECRET = 'attack-sessions-secret'
const token = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})

describe('attack: taking over another subject\'s client id, with auth on', () => {
  let gw: TestGateway
  let holder: Responder
  let echo: Responder
  let attackerToken: string
  let victimToken: string
  const clients: MqttClient[] = []
  const connect = async (password: string, opts: IClientOptions): Promise<MqttClient> => {
    const c = await connectClient(gw.mqttUrl, { username: 'u', password, ...opts })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, maxTimeoutMs: 1500, requestTimeoutMs: 1500 })
    const serve = await token('--sub', 'svc', '--serve', 'slow', '--serve', 'echo')
    holder = await Responder.start(gw.mqttUrl, '$req/slow/#', undefined, { username: 'u', password: serve, clientId: 'slow-responder' })
    echo = await startEcho(gw.mqttUrl, '$req/echo/#', { username: 'u', password: serve, clientId: 'echo-responder' })
    // The attacker's token has no grants at all.
    attackerToken = await token('--sub', 'attacker')
    victimToken = await token('--sub', 'victim', '--call', 'slow', '--call', 'echo', '--subscribe', 'users/${sub}/#')
  })
  afterEach(async () => { await Promise.all(clients.splice(0).map(c => c.endAsync(true))) })
  afterAll(async () => {
    await holder?.close()
    await echo?.close()
    await gw?.close()
  })

  it('a live victim: the attacker gets CONNACK 5; the victim stays connected and still gets its pending reply', async () => {
    const victim = await connect(victimToken, { clientId: 'victim-dev' })
    await subscribe(victim, '$inbox/victim-dev/#')
    victim.publish('$req/slow/x', JSON.stringify({ id: 'r1', replyTo: '$inbox/victim-dev/r', body: 'secret question' }))
    const [req] = await holder.waitForRequests(1)
    for (const clean of [true, false]) {
      expect((await connackOf(gw.mqttUrl, { clientId: 'victim-dev', username: 'u', password: attackerToken, clean })).code).toBe(5)
    }
    expect(victim.connected).toBe(true)
    const answer = nextMessage(victim, t => t === '$inbox/victim-dev/r')
    await holder.reply(req!, { body: 'secret answer' })
    expect(JSON.parse((await answer).payload.toString())).toMatchObject({ id: 'r1', body: 'secret answer' })
  })

  it('mosquitto_sub with the victim\'s id and the attacker\'s token is refused, and reads nothing', async () => {
    const victim = await connect(victimToken, { clientId: 'victim-2' })
    await subscribe(victim, '$inbox/victim-2/#')
    const r = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', '311', '-i', 'victim-2', '-u', 'u', '-P', attackerToken, '-t', '$inbox/victim-2/#', '-C', '1', '-W', '3'])
      .then(() => ({ code: 0, out: '' }), (err: { code?: number, stderr?: string }) => ({ code: err.code ?? -1, out: err.stderr ?? '' }))
    expect(r.code).not.toBe(0)
    expect(r.out).toMatch(/not authori[sz]ed/i)
    expect(victim.connected).toBe(true)
  })

  it('a persistent session: CONNACK 5 whether the attacker asks to resume it or to wipe it; the victim resumes it with every queued message', async () => {
    const opts = { clientId: 'victim-persist', clean: false }
    const victim = await connect(victimToken, opts)
    await subscribe(victim, 'users/victim/#', 1)
    await victim.endAsync()
    const publisher = await connect(await token('--sub', 'pub', '--publish', 'users/#'), { clientId: 'publisher' })
    for (let i = 0; i < 3; i++) await publisher.publishAsync('users/victim/mail', `m${i}`, { qos: 1 })
    for (const clean of [false, true]) {
      const got = await connackOf(gw.mqttUrl, { clientId: 'victim-persist', username: 'u', password: attackerToken, clean })
      expect(got).toEqual({ code: 5, sessionPresent: false })
    }
    // Listening from the first byte: the queued messages follow the CONNACK at once.
    const back = mqtt.connect(gw.mqttUrl, { username: 'u', password: victimToken, ...opts, reconnectPeriod: 0 })
    clients.push(back)
    const seen = recordMessages(back)
    expect((await onceWithin<{ sessionPresent: boolean }>(back, 'connect')).sessionPresent).toBe(true)
    await waitFor(() => seen.length >= 3, { what: 'the three queued messages' })
    expect(seen.map(m => m.payload.toString())).toEqual(['m0', 'm1', 'm2'])
  })

  it('a responder: the attacker cannot kick it off, and REST callers keep getting 200', async () => {
    expect((await connackOf(gw.mqttUrl, { clientId: 'echo-responder', username: 'u', password: attackerToken })).code).toBe(5)
    const res = await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'hi', headers: { authorization: `Bearer ${victimToken}` } })
    expect(res.status).toBe(200)
    expect(echo.client.connected).toBe(true)
  })

  it('the same subject takes over, as MQTT requires', async () => {
    const first = await connect(victimToken, { clientId: 'victim-same' })
    const closed = onceWithin(first, 'close')
    const second = await connect(await token('--sub', 'victim'), { clientId: 'victim-same' })
    await closed
    expect(second.connected).toBe(true)
  })

  it('a clean session\'s id stays its subject\'s for maxTimeoutMs after it ends, so no late reply reaches another subject', async () => {
    const victim = await connect(victimToken, { clientId: 'victim-gone' })
    await subscribe(victim, '$inbox/victim-gone/#')
    victim.publish('$req/slow/late', JSON.stringify({ id: 'late', replyTo: '$inbox/victim-gone/r', body: 'q' }))
    const req = (await holder.waitForRequests(2)).find(r => r.env.path === '/late')
    await victim.endAsync()
    expect((await connackOf(gw.mqttUrl, { clientId: 'victim-gone', username: 'u', password: attackerToken })).code).toBe(5)
    // The reply comes while the victim is gone: it reaches nobody.
    await holder.reply(req!, { body: 'late answer' })
    // Once maxTimeoutMs has passed, no reply can still be on its way, and the id is free.
    await waitFor(async () => (await connackOf(gw.mqttUrl, { clientId: 'victim-gone', username: 'u', password: attackerToken })).code === 0, { timeoutMs: 5_000, intervalMs: 200, what: 'the id to be free again' })
  })

  it('a token may pin its client ids (rtw.clientid, ${sub} and a trailing *), as EMQX binds clientid to a claim', async () => {
    const pinned = await token('--sub', 'alice', '--clientid', '${sub}-*', '--clientid', 'kiosk-1')
    for (const [id, code] of [['alice-phone', 0], ['alice-', 0], ['kiosk-1', 0], ['bob-phone', 5], ['kiosk-12', 5], ['alice', 5]] as const) {
      expect((await connackOf(gw.mqttUrl, { clientId: id, username: 'u', password: pinned })).code, id).toBe(code)
    }
    // A ${sub} that would widen the pin voids it: this token may use no id at all.
    const evil = await mintToken(['--sub', '*', '--clientid', '${sub}', '--secret', SECRET], {})
    expect((await connackOf(gw.mqttUrl, { clientId: '*', username: 'u', password: evil })).code).toBe(5)
  })
})

describe('attack: taking over a client id without auth', () => {
  let gw: TestGateway
  const clients: MqttClient[] = []
  beforeAll(async () => { gw = await startGateway({ takeoverGraceMs: 800 }) })
  afterEach(async () => { await Promise.all(clients.splice(0).map(c => c.endAsync(true))) })
  afterAll(async () => { await gw?.close() })

  it('a responder\'s id cannot be taken from another address (CONNACK 2); the responder keeps serving', async () => {
    const responder = await startEcho(gw.mqttUrl, '$req/echo/#', { clientId: 'anon-echo' })
    try {
      const got = await connackOf('', { clientId: 'anon-echo' }, { address: '127.0.0.2', port: gw.mqttPort })
      expect(got.code).toBe(2)
      expect(responder.client.connected).toBe(true)
      const res = await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'still served' })
      expect(await res.text()).toBe('still served')
    } finally {
      await responder.close()
    }
  })

  it('a persistent session cannot be resumed from another address within takeoverGraceMs; its owner resumes it', async () => {
    const owner = await connectClient(gw.mqttUrl, { clientId: 'anon-persist', clean: false })
    await subscribe(owner, 'anon/mail', 1)
    await owner.endAsync()
    const pub = await connectClient(gw.mqttUrl, { clientId: 'anon-pub' })
    clients.push(pub)
    await pub.publishAsync('anon/mail', 'queued', { qos: 1 })
    expect(await connackOf('', { clientId: 'anon-persist', clean: false }, { address: '127.0.0.2', port: gw.mqttPort })).toEqual({ code: 2, sessionPresent: false })
    const back = mqtt.connect(gw.mqttUrl, { clientId: 'anon-persist', clean: false, reconnectPeriod: 0 })
    clients.push(back)
    const got = nextMessage(back, t => t === 'anon/mail')
    expect((await got).payload.toString()).toBe('queued')
  })

  it('connections that close right after their CONNECT leave no client id held as connected', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `gone-${i}`)
    await Promise.all(ids.map(async id => {
      const raw = await rawConnect(gw.mqttPort)
      raw.send(connectPacket(id, { clean: false }))
      raw.destroy()
    }))
    // Each record ends (and its takeoverGraceMs starts) whether or not Aedes got to register the client.
    await waitFor(async () => {
      const records = await Promise.all(ids.map(async id => await gw.app.sessionOwners.get(id)))
      return records.every(r => r === undefined || !r.connected)
    }, { timeoutMs: 5_000, what: 'every record to be ended' })
  })

  it('documented limits: after takeoverGraceMs, or for a plain caller, another address may take the id over', async () => {
    const owner = await connectClient(gw.mqttUrl, { clientId: 'anon-later', clean: false })
    await subscribe(owner, 'anon/later', 1)
    await owner.endAsync()
    await waitFor(async () => (await connackOf('', { clientId: 'anon-later', clean: false }, { address: '127.0.0.2', port: gw.mqttPort })).code === 0,
      { timeoutMs: 5_000, intervalMs: 200, what: 'the grace period to pass' })
    const plain = await connectClient(gw.mqttUrl, { clientId: 'anon-plain' })
    clients.push(plain)
    const closed = onceWithin(plain, 'close')
    const thief = await connectFrom('127.0.0.2', gw.mqttPort, { clientId: 'anon-plain' })
    clients.push(thief)
    await closed
  })
})
