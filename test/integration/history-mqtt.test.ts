// Recovery for MQTT subscribers [P-16]: positioned copies on $history/<topic>,
// GET /history for what was missed, and the $history namespace's rules.
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, recordMessages, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'

const split = (payload: Buffer): [string, string] => {
  const nl = payload.indexOf(0x0a)
  return [payload.subarray(0, nl).toString(), payload.subarray(nl + 1).toString()]
}

describe('$history copies and GET /history with MQTT.js', () => {
  let gw: TestGateway
  const clients: MqttClient[] = []
  beforeAll(async () => { gw = await startGateway({ historyTopics: 'm/#' }) })
  afterAll(async () => {
    await Promise.all(clients.map(c => c.endAsync()))
    await gw.close()
  })

  it('recovers across a dropped connection as PROTOCOL [P-16.3] describes: every message once, in order', async () => {
    const sub = await connectClient(gw.mqttUrl)
    const pub = await connectClient(gw.mqttUrl)
    clients.push(pub)
    await subscribe(sub, '$history/m/#')
    const seen = recordMessages(sub)
    await pub.publishAsync('m/a', '1', { qos: 1 })
    await pub.publishAsync('m/b', Buffer.from([0xff]), { qos: 1 })
    await pub.publishAsync('n/x', 'outside historyTopics', { qos: 1 })
    await waitFor(() => seen.length === 2, { what: 'two copies' })
    expect(seen[0]?.topic).toBe('$history/m/a')
    const [pos, payload] = split(seen[0]?.payload as Buffer)
    expect(pos).toMatch(/^[0-9a-z]+-\d+$/)
    expect(payload).toBe('1')
    expect(seen[0]?.retain).toBe(false)
    const kept = split(seen[1]?.payload as Buffer)[0]
    await sub.endAsync()

    // Missed while away.
    for (const n of ['2', '3', '4']) await pub.publishAsync('m/a', n, { qos: 1 })

    const back = await connectClient(gw.mqttUrl)
    clients.push(back)
    const held = recordMessages(back)
    await subscribe(back, '$history/m/#')
    // Published between the SUBSCRIBE and the recovery call: it comes both ways, once to the application.
    await pub.publishAsync('m/a', '5', { qos: 1 })
    await waitFor(() => held.length === 1, { what: 'the live copy' })
    const res = await fetch(`${gw.httpUrl}/history?topic=m/%23&since=${kept}`)
    const body = await res.json() as { recovered: boolean, position: string, messages: Array<{ id: string, payload: string }> }
    expect(body.recovered).toBe(true)
    const offset = (id: string): number => Number(id.split('-')[1])
    const replayed = body.messages.map(m => m.payload)
    const last = offset(body.messages.at(-1)?.id ?? body.position)
    const live = held.map(h => split(h.payload)).filter(([p]) => offset(p) > last).map(([, v]) => v)
    await pub.publishAsync('m/a', '6', { qos: 1 })
    await waitFor(() => held.length === 2, { what: 'the next live copy' })
    expect([...replayed, ...live, split(held[1]?.payload as Buffer)[1]]).toEqual(['2', '3', '4', '5', '6'])
  })

  it('drops what a client publishes to $history/…, so positions cannot be forged', async () => {
    const sub = await connectClient(gw.mqttUrl)
    const forger = await connectClient(gw.mqttUrl)
    clients.push(sub, forger)
    await subscribe(sub, ['$history/f/#', 'f/#'])
    const seen = recordMessages(sub)
    await forger.publishAsync('$history/f/x', 'zz-1\nforged', { qos: 1 })
    await forger.publishAsync('f/x', 'real', { qos: 1 })
    await waitFor(() => seen.length >= 2, { what: 'the real message and its copy' })
    expect(seen.map(m => m.payload.toString()).some(p => p.includes('forged'))).toBe(false)
  })
})

describe('$history with auth', () => {
  const SECRET = 'history-test-secret-long-enough-for-hs256'
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET }) })
  afterAll(async () => { await gw.close() })

  it('grants $history/<filter> exactly when <filter> is granted', async () => {
    const token = await new SignJWT({ rtw: { subscribe: ['room/1/#'] } }).setProtectedHeader({ alg: 'HS256' })
      .setSubject('u').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))
    const c = await connectClient(gw.mqttUrl, { username: 'jwt', password: token })
    try {
      expect(await grantedQos(c, ['$history/room/1/#', '$history/room/#', '$history', '$history/#'])).toEqual([1, 128, 128, 128])
    } finally {
      await c.endAsync()
    }
  })
})
