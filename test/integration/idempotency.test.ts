// Idempotency-Key on REST calls (PROTOCOL.md §13), on one in-process gateway
// with a real MQTT responder that counts what it executes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder, type Incoming } from '../helpers/responders.js'
import { errorCode } from '../helpers/http.js'
import { waitFor } from '../helpers/wait.js'

describe('Idempotency-Key', () => {
  let gw: TestGateway
  let responder: Responder
  /** Requests the responder holds back until released (path /slow/…). */
  const held: Incoming[] = []

  beforeAll(async () => {
    // Trusting loopback's X-Forwarded-For lets one test play several client addresses.
    gw = await startGateway({ trustedProxies: '127.0.0.1', idempotencyMaxKeys: 50 })
    responder = await Responder.start(gw.mqttUrl, '$req/idem/#', (req, r) => {
      if (req.env.path.startsWith('/slow')) { held.push(req); return }
      // [P-2.5] fire-and-forget: nobody waits for a reply.
      if (req.env.replyTo === '') return
      const status = req.env.path.startsWith('/fail') ? 500 : 201
      void r.reply(req, { status, headers: { 'content-type': 'text/plain', 'x-run': String(r.requests.length) }, body: `ran ${req.env.method} ${req.env.path} ${req.env.body ?? ''}` })
    })
  })
  afterAll(async () => {
    await responder?.close()
    await gw?.close()
  })

  const key = (): string => randomBytes(8).toString('hex')
  const call = async (path: string, k: string | undefined, init: RequestInit & { from?: string } = {}): Promise<Response> => {
    const headers: Record<string, string> = { 'content-type': 'text/plain', ...(init.headers as Record<string, string> | undefined) }
    if (k !== undefined) headers['idempotency-key'] = k
    if (init.from !== undefined) headers['x-forwarded-for'] = init.from
    return await fetch(`${gw.httpUrl}/api/idem${path}`, { method: 'POST', body: 'payload', ...init, headers })
  }
  const executed = (path: string): number => responder.requests.filter(r => r.env.path === path).length

  it('a repeat of a completed call gets the stored response, marked as replayed, and the responder runs once', async () => {
    const k = key()
    const path = `/once/${k}`
    const first = await call(path, k)
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    const body = await first.text()
    expect(body).toBe(`ran POST ${path} payload`)
    for (let i = 0; i < 3; i++) {
      const again = await call(path, k)
      expect(again.status).toBe(201)
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(again.headers.get('x-request-id')).toBe(first.headers.get('x-request-id'))
      expect(again.headers.get('x-run')).toBe(first.headers.get('x-run'))
      expect(again.headers.get('content-type')).toBe('text/plain')
      expect(await again.text()).toBe(body)
    }
    expect(executed(path)).toBe(1)
    // The responder sees the key as an end-to-end header, for its own dedupe.
    expect(responder.requests.find(r => r.env.path === path)?.env.headers['idempotency-key']).toBe(k)
  })

  it('a quoted key (structured-field string) is the same key; the timeout parameter is not part of the call', async () => {
    const k = key()
    const path = `/quoted/${k}`
    expect((await call(path, k)).status).toBe(201)
    const again = await call(`${path}?timeout=5s`, `"${k}"`)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(executed(path)).toBe(1)
  })

  it('the same key with another method, path, query or body gets 422 RTW_IDEMPOTENCY_KEY_REUSED and runs nothing', async () => {
    const k = key()
    const path = `/reuse/${k}`
    expect((await call(path, k)).status).toBe(201)
    const variants = [
      await call(path, k, { method: 'PUT' }),
      await call(`${path}/other`, k),
      await call(`${path}?x=1`, k),
      await call(path, k, { body: 'another payload' })
    ]
    for (const res of variants) {
      expect(res.status).toBe(422)
      expect(await errorCode(res)).toBe('RTW_IDEMPOTENCY_KEY_REUSED')
    }
    expect(responder.requests.filter(r => r.env.path.startsWith(path))).toHaveLength(1)
  })

  it('keys are per caller: the same key from another client address is another call', async () => {
    const k = key()
    const path = `/scoped/${k}`
    const a = await call(path, k, { from: '203.0.113.7' })
    const b = await call(path, k, { from: '203.0.113.8' })
    expect(a.headers.get('idempotent-replayed')).toBeNull()
    expect(b.headers.get('idempotent-replayed')).toBeNull()
    expect(executed(path)).toBe(2)
    expect((await call(path, k, { from: '203.0.113.7' })).headers.get('idempotent-replayed')).toBe('true')
  })

  it('a repeat while the first is still running on this node waits for it and gets its response', async () => {
    const k = key()
    const path = `/slow/${k}`
    const first = call(path, k)
    await waitFor(() => held.some(r => r.env.path === path), { what: 'the first call at the responder' })
    const second = call(path, k)
    // The second is parked on the first, not at the responder.
    await waitFor(() => gw.app.idempotency.counters.waited > 0, { what: 'the repeat to wait' })
    const req = held.find(r => r.env.path === path) as Incoming
    await responder.reply(req, { status: 200, body: 'slow done' })
    const [r1, r2] = await Promise.all([first, second])
    expect(r1.status).toBe(200)
    expect(await r1.text()).toBe('slow done')
    expect(r2.status).toBe(200)
    expect(r2.headers.get('idempotent-replayed')).toBe('true')
    expect(await r2.text()).toBe('slow done')
    expect(executed(path)).toBe(1)
  })

  it('an error reply is kept and replayed too; a call refused before it ran (no responder) frees its key', async () => {
    const k = key()
    const failed = await call(`/fail/${k}`, k)
    expect(failed.status).toBe(500)
    const again = await call(`/fail/${k}`, k)
    expect(again.status).toBe(500)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(executed(`/fail/${k}`)).toBe(1)

    const k2 = key()
    const nobody = await fetch(`${gw.httpUrl}/api/nobody-${k2}/x`, { method: 'POST', body: 'b', headers: { 'idempotency-key': k2 } })
    expect(nobody.status).toBe(404)
    expect(await errorCode(nobody)).toBe('RTW_NO_RESPONDER')
    const late = await Responder.start(gw.mqttUrl, `$req/nobody-${k2}/#`, (req, r) => { void r.reply(req, { status: 200, body: 'now there is one' }) })
    try {
      const retry = await fetch(`${gw.httpUrl}/api/nobody-${k2}/x`, { method: 'POST', body: 'b', headers: { 'idempotency-key': k2 } })
      expect(retry.status).toBe(200)
      expect(retry.headers.get('idempotent-replayed')).toBeNull()
      expect(await retry.text()).toBe('now there is one')
    } finally {
      await late.close()
    }
  })

  it('a bad key gets 400 RTW_BAD_IDEMPOTENCY_KEY and runs nothing', async () => {
    const before = responder.requests.length
    for (const bad of ['', 'has space', 'x'.repeat(256), 'ünï']) {
      const res = await fetch(`${gw.httpUrl}/api/idem/bad`, { method: 'POST', body: 'b', headers: { 'idempotency-key': bad } })
      expect(res.status).toBe(400)
      expect(await errorCode(res)).toBe('RTW_BAD_IDEMPOTENCY_KEY')
    }
    expect(responder.requests.length).toBe(before)
  })

  it('a fire-and-forget call (timeout=0) is sent once and its 202 replayed', async () => {
    const k = key()
    const path = `/forget/${k}`
    const first = await call(`${path}?timeout=0`, k)
    expect(first.status).toBe(202)
    await waitFor(() => executed(path) === 1, { what: 'the request at the responder' })
    const again = await call(`${path}?timeout=0`, k)
    expect(again.status).toBe(202)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.json()).toEqual(await first.json())
    expect(executed(path)).toBe(1)
  })

  it('past idempotencyMaxKeys a new key is refused with 503 RTW_IDEMPOTENCY_STORE_FULL, and known keys still replay', async () => {
    const stats = gw.app.idempotency.kv.stats()
    const room = 50 - stats.entries
    const keys = Array.from({ length: room }, key)
    for (const k of keys) expect((await call(`/fill/${k}`, k)).status).toBe(201)
    const refused = await call('/fill/one-more', key())
    expect(refused.status).toBe(503)
    expect(await errorCode(refused)).toBe('RTW_IDEMPOTENCY_STORE_FULL')
    expect(refused.headers.get('retry-after')).not.toBeNull()
    expect(executed('/fill/one-more')).toBe(0)
    const replay = await call(`/fill/${keys[0] as string}`, keys[0])
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    // Calls without a key are not affected.
    expect((await call('/fill/no-key', undefined)).status).toBe(201)
  })
})

describe('Idempotency-Key with auth: scoped per token subject', () => {
  const SECRET = randomBytes(32).toString('hex')
  let gw: TestGateway
  let responder: Responder
  const jwt = async (sub: string, rtw: Record<string, string[]>): Promise<string> =>
    await new SignJWT({ rtw }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET))

  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET, trustedProxies: '127.0.0.1' })
    responder = await Responder.start(gw.mqttUrl, '$req/idem/#', (req, r) => { void r.reply(req, { status: 200, body: `run ${r.requests.length}` }) },
      { username: 'responder', password: await jwt('responder', { serve: ['idem'] }) })
  })
  afterAll(async () => {
    await responder?.close()
    await gw?.close()
  })

  const call = async (token: string, key: string, from: string): Promise<Response> => await fetch(`${gw.httpUrl}/api/idem/auth`, {
    method: 'POST', body: 'b', headers: { authorization: `Bearer ${token}`, 'idempotency-key': key, 'x-forwarded-for': from }
  })

  it('one subject shares its keys across addresses and tokens; another subject with the same key is another call', async () => {
    const key = randomBytes(6).toString('hex')
    const alice1 = await jwt('alice', { call: ['idem'] })
    const alice2 = await jwt('alice', { call: ['idem'] })
    const bob = await jwt('bob', { call: ['idem'] })
    const first = await call(alice1, key, '198.51.100.1')
    expect(first.status).toBe(200)
    const text = await first.text()
    // Same subject, another token and another address: the same record.
    const again = await call(alice2, key, '198.51.100.2')
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await again.text()).toBe(text)
    // Another subject: its own call, not alice's response.
    const other = await call(bob, key, '198.51.100.1')
    expect(other.headers.get('idempotent-replayed')).toBeNull()
    expect(await other.text()).not.toBe(text)
    expect(responder.requests).toHaveLength(2)
  })
})
