// The web client with JWT auth turned on in the gateway: the token is the
// MQTT password and the REST Bearer, refused credentials are handled, and
// tokens are refreshed before they expire without dropping the session.
import { createSecretKey } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { HoldingResponder, nextEvent, nodeClient, rejection, startEchoResponder } from '../helpers/web-client.js'
import type { RealtimeClient } from '../../web-client/src/index.js'

const SECRET = 'web-client-test-secret-0123456789abcdef'
const key = createSecretKey(Buffer.from(SECRET))

/** An HS256 token with RealTime-Web grants, living ttl seconds. */
function mint (rtw: Record<string, string[]>, ttl = 3600, sub = 'browser'): Promise<string> {
  return new SignJWT({ rtw }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub)
    .setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + ttl).sign(key)
}

const USER = { call: ['echo'], subscribe: ['t/#'], publish: ['t/#'] }

describe('web client with JWT auth', () => {
  let gw: TestGateway
  let responder: MqttClient
  const clients: RealtimeClient[] = []
  const track = (c: RealtimeClient): RealtimeClient => { clients.push(c); return c }

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET })
    responder = await startEchoResponder(gw.mqttUrl, { username: 'echo', password: await mint({ serve: ['echo'] }, 3600, 'echo') })
  })
  afterEach(() => {
    for (const c of clients.splice(0)) c.close()
  })
  afterAll(async () => {
    await responder.endAsync()
    await gw.close()
  })

  it('sends the token as the MQTT password and as the REST Bearer; grants apply on both routes', async () => {
    const client = track(nodeClient(gw.wsUrl, { token: await mint(USER) }))
    for (const via of ['mqtt', 'rest'] as const) {
      expect(await client.request('echo', '/x', { body: via, via })).toMatchObject({ status: 200, body: via })
      const refused = await rejection(client.request('other', '/x', { via }))
      expect(refused).toMatchObject({ code: 'RTW_FORBIDDEN', status: 403 })
    }
    expect(client.state).toBe('connected')
  })

  it('stops, with RTW_CLIENT_CONNECT_REFUSED, when a fixed token is refused', async () => {
    const client = track(nodeClient(gw.wsUrl, { token: 'not-a-jwt' }))
    const closed = nextEvent(client, 'state', s => s === 'closed')
    const [err] = await nextEvent(client, 'error')
    expect(err.code).toBe('RTW_CLIENT_CONNECT_REFUSED')
    await closed
    expect((await rejection(client.request('echo', '/x'))).code).toBe('RTW_CLIENT_CLOSED')
  })

  it('asks getToken again when the gateway refuses a token, then connects', async () => {
    let calls = 0
    const client = track(nodeClient(gw.wsUrl, { getToken: async () => ++calls === 1 ? 'expired-or-bad' : mint(USER) }))
    const [err] = await nextEvent(client, 'error')
    expect(err.code).toBe('RTW_CLIENT_CONNECT_REFUSED')
    await client.whenConnected()
    expect(calls).toBe(2)
    expect((await client.request('echo', '/ok', { body: 'in' })).body).toBe('in')
  })

  it('refreshes the token before it expires, reconnecting without a drop', async () => {
    const tokens: string[] = []
    const client = track(nodeClient(gw.wsUrl, {
      getToken: async () => {
        const t = await mint(USER, 3)
        tokens.push(t)
        return t
      }
    }))
    const drops: string[] = []
    client.on('disconnected', info => drops.push(info.reason))
    let delivered = (_text: string): void => {}
    const arrived = new Promise<string>(resolve => { delivered = resolve })
    await client.subscribe('t/#', m => delivered(m.text)).ready
    // Three tokens in: the first one has expired by now, and the session went on.
    await nextEvent(client, 'connected', () => tokens.length === 3)
    expect(drops).toEqual([])
    expect((await client.request('echo', '/after', { body: 'refreshed' })).body).toBe('refreshed')
    await client.publish('t/x', 'still subscribed', { qos: 1 })
    expect(await arrived).toBe('still subscribed')
  })

  it('lets a request in flight finish before the refresh reconnect, and holds new ones for the new connection', async () => {
    const hold = await HoldingResponder.start(gw.mqttUrl, 'slow', { username: 'slow', password: await mint({ serve: ['slow'] }, 3600, 'slow') })
    try {
      let refreshStarted = (): void => {}
      const refreshing = new Promise<void>(resolve => { refreshStarted = resolve })
      let calls = 0
      const client = track(nodeClient(gw.wsUrl, {
        getToken: async () => {
          const token = await mint({ call: ['slow'] }, 3)
          // Signalled a macrotask later, when the client has taken the new token and holds new traffic.
          if (++calls === 2) setImmediate(refreshStarted)
          return token
        }
      }))
      await client.whenConnected()
      const order: string[] = []
      // A POST is not retried after a drop, so the refresh must not cut it off.
      const post = client.request('slow', '/in-flight', { method: 'POST', body: 'x', timeout: 10_000 })
      void post.then(() => order.push('answered'))
      const held = await hold.next()
      await refreshing
      client.on('state', s => order.push(s))
      const during = client.request('slow', '/during', { method: 'POST', body: 'y', timeout: 10_000 })
      hold.answer(held, 200, 'done')
      expect(await post).toMatchObject({ status: 200, body: 'done' })
      const next = await hold.next()
      expect(next.env.path).toBe('/during')
      hold.answer(next, 201, 'after the refresh')
      expect(await during).toMatchObject({ status: 201, body: 'after the refresh' })
      expect(order).toEqual(['answered', 'connecting', 'connected'])
    } finally {
      await hold.mqtt.endAsync()
    }
  })

  it('ends a session whose fixed token expires, without falling back to anonymous', async () => {
    const client = track(nodeClient(gw.wsUrl, { token: await mint(USER, 2) }))
    await client.whenConnected()
    const closed = nextEvent(client, 'state', s => s === 'closed')
    const [err] = await nextEvent(client, 'error')
    expect(err.code).toBe('RTW_CLIENT_CONNECT_REFUSED')
    await closed
  })
})
