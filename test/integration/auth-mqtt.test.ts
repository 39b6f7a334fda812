// Authentication and authorization on MQTT (PROTOCOL.md §11), each rule tried
// by a real attacker client.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, nextMessage, recordMessages, subscribe, connackCode } from '../helpers/mqtt.js'
import { onceWithin, waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'
import { echo } from '../../echo-server/echo.js'

const SECRET = 'auth-mqtt-test-secret'
const token = (...args: string[]): Promise<string> => mintToken([...args, '--secret', SECRET], {})

describe('MQTT auth', () => {
  let gw: TestGateway
  const clients: MqttClient[] = []
  const connect = async (password: string, clientId?: string): Promise<MqttClient> => {
    const c = await connectClient(gw.mqttUrl, { username: 'whatever', password, ...(clientId === undefined ? {} : { clientId }) })
    clients.push(c)
    return c
  }

  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET }) })
  afterEach(async () => { await Promise.all(clients.splice(0).map(c => c.endAsync(true))) })
  afterAll(async () => { await gw.close() })

  it('refuses a CONNECT without a token (5), with a bad one (4), and an expired one (4); never falls back to anonymous', async () => {
    expect(await connackCode(gw.mqttUrl, undefined)).toBe(5)
    expect(await connackCode(gw.mqttUrl, 'not-a-jwt')).toBe(4)
    const forged = await mintToken(['--sub', 'x', '--secret', 'another-secret'], {})
    expect(await connackCode(gw.mqttUrl, forged)).toBe(4)
    const expired = await mintToken(['--sub', 'x', '--ttl', '0s', '--secret', SECRET], {})
    expect(await connackCode(gw.mqttUrl, expired)).toBe(4)
    expect(await connackCode(gw.mqttUrl, await token('--sub', 'x'))).toBe(0)
  })

  it('a token without grants may connect, but not serve, call, publish or subscribe', async () => {
    const c = await connect(await token('--sub', 'nobody'))
    expect(await grantedQos(c, ['$req/echo/#', '$req/#', 'news/#', '$res/echo/#'])).toEqual([128, 128, 128, 128])
    // Its own inbox is always its own.
    expect(await grantedQos(c, `$inbox/${c.options.clientId}/#`)).toEqual([1])
  })

  it('only a server of a service may subscribe to its requests; serve "*" may subscribe to all', async () => {
    const server = await connect(await token('--sub', 's', '--serve', 'echo'))
    expect(await grantedQos(server, ['$req/echo/#', '$req/other/#', '$req/+/x'])).toEqual([1, 128, 128])
    const all = await connect(await token('--sub', 'root', '--serve', '*'))
    expect(await grantedQos(all, ['$req/+/x', '$req/#'])).toEqual([1, 1])
  })

  it('publish and subscribe grants with ${sub} and ${clientid} placeholders', async () => {
    const alice = await connect(await token('--sub', 'alice', '--publish', 'users/${sub}/#', '--subscribe', 'users/${sub}/#', '--subscribe', 'devices/${clientid}/#'), 'alice-phone')
    expect(await grantedQos(alice, ['users/alice/#', 'users/bob/#', 'users/+/x', 'devices/alice-phone/#', 'devices/other/#', '#']))
      .toEqual([1, 128, 128, 1, 128, 128])
    const seen = recordMessages(alice)
    await alice.publishAsync('users/bob/inbox', 'forged', { qos: 1 })
    await alice.publishAsync('users/alice/ok', 'mine', { qos: 1 })
    await waitFor(() => seen.some(m => m.topic === 'users/alice/ok'), { what: 'own publish to come back' })
    expect(seen.map(m => m.topic)).not.toContain('users/bob/inbox')
    expect(gw.app.broker.subscriptions.hasMatch('users/bob/inbox')).toBe(false)
  })

  it('no client may publish to $SYS', async () => {
    const root = await connect(await token('--sub', 'root', '--publish', '#', '--serve', '*'))
    const closed = onceWithin(root, 'close')
    root.publish('$SYS/fake', 'x')
    await closed
  })

  it('a caller may call only granted services, and is told 403 in its inbox otherwise', async () => {
    const server = await connect(await token('--sub', 'srv', '--serve', 'echo'))
    await subscribe(server, '$req/echo/#')
    server.on('message', (t, p) => { const o = echo(t, p); if (o !== null) server.publish(o.topic, o.payload) })
    const caller = await connect(await token('--sub', 'dev', '--call', 'echo'), 'dev-1')
    await subscribe(caller, '$inbox/dev-1/#')
    const ok = nextMessage(caller, t => t === '$inbox/dev-1/a')
    caller.publish('$req/echo/x', JSON.stringify({ id: 'a', replyTo: '$inbox/dev-1/a', body: 'hi' }))
    expect(JSON.parse((await ok).payload.toString())).toMatchObject({ id: 'a', status: 200, body: 'hi' })

    const denied = nextMessage(caller, t => t === '$inbox/dev-1/b')
    caller.publish('$req/billing/x', JSON.stringify({ id: 'b', replyTo: '$inbox/dev-1/b' }))
    const reply = JSON.parse((await denied).payload.toString())
    expect(reply.status).toBe(403)
    expect(JSON.parse(reply.body).error.code).toBe('RTW_FORBIDDEN')
  })

  it('a reply is accepted only from a server of that service, and only while the request is pending', async () => {
    const server = await connect(await token('--sub', 'srv', '--serve', 'slow'))
    await subscribe(server, '$req/slow/#')
    const forger = await connect(await token('--sub', 'evil', '--serve', 'other', '--call', 'slow'))
    const requests = recordMessages(server)
    const pending = fetch(`${gw.httpUrl}/api/slow/x`, { method: 'POST', body: 'q', headers: { authorization: `Bearer ${await token('--sub', 'web', '--call', 'slow')}` } })
    await waitFor(() => requests.length > 0, { what: 'the request at the server' })
    const env = JSON.parse((requests[0] as { payload: Buffer }).payload.toString())
    // With auth on, /stats needs the $SYS/# grant, as /metrics does.
    const stats = { headers: { authorization: `Bearer ${await token('--sub', 'ops', '--subscribe', '$SYS/#')}` } }
    const before = (await (await fetch(`${gw.httpUrl}/stats`, stats)).json()) as { dropped: Record<string, number> }

    // A client that does not serve "slow" publishes a well-formed reply on the $rid topic: dropped.
    await forger.publishAsync(env.replyTo, JSON.stringify({ id: env.id, status: 200, body: 'forged' }), { qos: 1 })
    // Serving another service does not help either: the topic names "other", the request was for "slow".
    await forger.publishAsync(`$res/other/$rid/${env.id}`, JSON.stringify({ id: env.id, status: 200, body: 'forged' }), { qos: 1 })
    // [P-3.8] it was never sent the request, so neither reply counts: dropped as not-asked.
    await waitFor(async () => {
      const s = (await (await fetch(`${gw.httpUrl}/stats`, stats)).json()) as { dropped: Record<string, number> }
      return (s.dropped['not-asked'] ?? 0) > (before.dropped['not-asked'] ?? 0)
    }, { what: 'the forged reply to be counted' })

    await server.publishAsync(env.replyTo, JSON.stringify({ id: env.id, status: 200, body: 'genuine' }), { qos: 1 })
    const res = await pending
    expect(await res.text()).toBe('genuine')

    // Replayed after it was answered: dropped as a duplicate, never delivered.
    await server.publishAsync(env.replyTo, JSON.stringify({ id: env.id, status: 200, body: 'replay' }), { qos: 1 })
    await waitFor(async () => {
      const s = (await (await fetch(`${gw.httpUrl}/stats`, stats)).json()) as { dropped: Record<string, number> }
      return (s.dropped.duplicate ?? 0) > (before.dropped.duplicate ?? 0)
    }, { what: 'the replayed reply to be counted' })
  })

  it('a client cannot read another client\'s replies', async () => {
    const victim = await connect(await token('--sub', 'v', '--call', '*'), 'victim')
    const thief = await connect(await token('--sub', 't', '--call', '*', '--subscribe', '#'), 'thief')
    expect(await grantedQos(thief, ['$inbox/victim/#', '$inbox/+/#', '$inbox/#', '$res/#'])).toEqual([128, 128, 128, 128])
    await subscribe(victim, '$inbox/victim/#')
    // Publishing into the victim's inbox is dropped too.
    const seen = recordMessages(victim)
    await thief.publishAsync('$inbox/victim/r', JSON.stringify({ id: '1', status: 200, body: 'forged' }), { qos: 1 })
    const answer = nextMessage(victim, t => t === '$inbox/victim/real')
    victim.publish('$req/nobody/x', JSON.stringify({ id: 'real', replyTo: '$inbox/victim/real' }))
    expect(JSON.parse((await answer).payload.toString()).status).toBe(404)
    expect(seen.map(m => m.topic)).not.toContain('$inbox/victim/r')
  })

  it('closes a live connection when its token expires', async () => {
    const short = await mintToken(['--sub', 'brief', '--ttl', '2s', '--secret', SECRET], {})
    // MQTT 3.1.1 sends a password only with a user name [MQTT-3.1.2-22]; any name will do.
    const c = await connectClient(gw.mqttUrl, { username: 'brief', password: short })
    clients.push(c)
    const started = Date.now()
    await onceWithin(c, 'close', 10_000)
    expect(Date.now() - started).toBeLessThan(5_000)
  })
})

describe('MQTT auth with mosquitto clients', () => {
  it('mosquitto_pub and mosquitto_sub authenticate with the token as password', async () => {
    const gw = await startGateway({ jwtSecret: SECRET })
    try {
      const { execFile } = await import('node:child_process')
      const run = (cmd: string, args: string[]): Promise<{ code: number, out: string }> => new Promise(resolve => {
        execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, out: stdout + stderr }))
      })
      const port = String(gw.mqttPort)
      const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-u', 'u', '-P', await token('--sub', 's', '--subscribe', 'm/#'), '-t', 'm/#', '-C', '1', '-W', '8'])
      await waitFor(() => gw.app.broker.subscriptions.hasMatch('m/x'), { what: 'mosquitto_sub to subscribe' })
      const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'u', '-P', await token('--sub', 'p', '--publish', 'm/#'), '-t', 'm/x', '-m', 'hello', '-q', '1'])
      expect(pub.code).toBe(0)
      expect((await sub).out.trim()).toBe('hello')
      const refused = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'u', '-P', 'bogus', '-t', 'm/x', '-m', 'x'])
      expect(refused.code).not.toBe(0)
      expect(refused.out).toMatch(/bad user name or password/i)
    } finally {
      await gw.close()
    }
  })
})
