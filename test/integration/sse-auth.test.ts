// GET /events with auth on: tokens in the header or the query, the same
// subscribe grants as MQTT SUBSCRIBE, 403 before the stream, and a stream
// ended when its token expires [P-15.6]; and the stream-count limit [P-15.7].
import { SignJWT } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { openEvents, type SseReader } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'sse-test-secret-that-is-long-enough-for-hs256'

async function token (grants: Record<string, string[]>, ttlSeconds = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ rtw: grants }).setProtectedHeader({ alg: 'HS256' })
    .setSubject('sse-user').setIssuedAt(now).setExpirationTime(now + ttlSeconds)
    .sign(new TextEncoder().encode(SECRET))
}

describe('GET /events with auth', () => {
  let gw: TestGateway
  const open: SseReader[] = []
  const events = async (query: string, headers: Record<string, string> = {}): Promise<SseReader> => {
    const r = await openEvents(`${gw.httpUrl}/events?${query}`, headers)
    open.push(r)
    return r
  }
  const publish = async (topic: string, payload: string): Promise<void> => {
    const res = await fetch(`${gw.httpUrl}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await token({ publish: ['#'] })}` },
      body: JSON.stringify({ topic, payload })
    })
    expect(res.status).toBeLessThan(300)
  }

  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET, sseMaxStreams: 3 }) })
  afterEach(() => { for (const r of open.splice(0)) r.close() })
  afterAll(async () => { await gw.close() })

  it('answers 401 without a token or with a bad one', async () => {
    const none = await events('topic=a/1')
    expect(none.status).toBe(401)
    expect(JSON.parse(none.text).error.code).toBe('RTW_UNAUTHORIZED')
    const bad = await events('topic=a/1&access_token=nope')
    expect(bad.status).toBe(401)
  })

  it('answers 403 RTW_FORBIDDEN for a filter the subscribe grants do not cover, before any stream starts', async () => {
    const t = await token({ subscribe: ['room/1/#'] })
    const wider = await events('topic=room/%23', { authorization: `Bearer ${t}` })
    expect(wider.status).toBe(403)
    expect(JSON.parse(wider.text).error.code).toBe('RTW_FORBIDDEN')
    // One refused filter refuses the stream, even next to an allowed one.
    const mixed = await events(`topic=room/1/a&topic=room/2/a&access_token=${t}`)
    expect(mixed.status).toBe(403)
    // Publish grants are not read grants; $SYS needs its own grant.
    const pub = await token({ publish: ['#'] })
    expect((await events(`topic=room/1/a&access_token=${pub}`)).status).toBe(403)
    expect((await events(`topic=%24SYS/%23&access_token=${t}`)).status).toBe(403)
    expect(gw.app.sse.counters.refusedAuth).toBeGreaterThanOrEqual(4)
  })

  it('streams what the grants cover, with the token in the header or in ?access_token=', async () => {
    const t = await token({ subscribe: ['room/1/#'] })
    const viaHeader = await events('topic=room/1/%23', { authorization: `Bearer ${t}` })
    const viaQuery = await events(`topic=room/1/%2B&access_token=${encodeURIComponent(t)}`)
    expect(viaHeader.status).toBe(200)
    expect(viaQuery.status).toBe(200)
    await waitFor(() => viaHeader.lastEventId !== '' && viaQuery.lastEventId !== '', { what: 'streams to start' })
    await publish('room/1/chat', 'hello')
    await viaHeader.waitMessages(1)
    await viaQuery.waitMessages(1)
    expect(viaQuery.messages()[0]).toEqual({ topic: 'room/1/chat', payload: 'hello', qos: 0 })
  })

  it('ends a stream when its token expires', async () => {
    const t = await token({ subscribe: ['exp/#'] }, 2)
    const r = await events(`topic=exp/1&access_token=${t}`)
    expect(r.status).toBe(200)
    await waitFor(() => r.ended, { timeoutMs: 10_000, what: 'the stream to end at expiry' })
    const last = r.events.at(-1)
    expect(last?.event).toBe('rtw-close')
    expect(JSON.parse(last?.data ?? '{}')).toEqual({ reason: 'expired', code: 'RTW_UNAUTHORIZED' })
    expect(gw.app.sse.counters.expired).toBe(1)
    // Reconnecting with the same token is refused.
    expect((await events(`topic=exp/1&access_token=${t}`)).status).toBe(401)
  })

  it('refuses a stream past sseMaxStreams with 503 RTW_TOO_MANY_STREAMS, and takes one again once another closes', async () => {
    const t = await token({ subscribe: ['#'] })
    const three = await Promise.all([1, 2, 3].map(async i => await events(`topic=full/${i}&access_token=${t}`)))
    expect(three.map(r => r.status)).toEqual([200, 200, 200])
    const fourth = await events(`topic=full/4&access_token=${t}`)
    expect(fourth.status).toBe(503)
    expect(JSON.parse(fourth.text).error.code).toBe('RTW_TOO_MANY_STREAMS')
    three[0]?.close()
    await waitFor(() => gw.app.sse.open() === 2, { what: 'a stream to close' })
    expect((await events(`topic=full/5&access_token=${t}`)).status).toBe(200)
  })
})
