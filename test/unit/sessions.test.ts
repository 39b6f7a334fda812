// Who may take a client id [P-4.7]: the pure decision and the in-memory store.
import { describe, expect, it } from 'vitest'
import { MemorySessionOwners, claimedRecord, decodeRecord, encodeRecord, endedRecord, keptFor, mayClaim, needsStoring, type Lease, type SessionRecord } from '../../core/sessions.js'

const rec = (over: Partial<SessionRecord>): SessionRecord => ({ owner: 'sub:v', persistent: false, responder: false, connected: true, endedAt: 0, lease: 'l1', ...over })
const auth = { auth: true, graceMs: 1000, maxRecords: 1000 }
const anon = { auth: false, graceMs: 1000, maxRecords: 1000 }
const claim = (owner: string, persistent = false) => ({ owner, persistent })

describe('mayClaim', () => {
  it('with auth: another subject never while connected, persistent, or within the grace; the same subject always', () => {
    expect(mayClaim(undefined, claim('sub:a'), 0, auth)).toBe(true)
    expect(mayClaim(rec({}), claim('sub:v'), 0, auth)).toBe(true)
    expect(mayClaim(rec({}), claim('sub:a'), 0, auth)).toBe(false)
    expect(mayClaim(rec({ connected: false, endedAt: 100, persistent: true }), claim('sub:a'), 1e9, auth)).toBe(false)
    expect(mayClaim(rec({ connected: false, endedAt: 100 }), claim('sub:a'), 1099, auth)).toBe(false)
    expect(mayClaim(rec({ connected: false, endedAt: 100 }), claim('sub:a'), 1100, auth)).toBe(true)
  })
  it('without auth: only responders and persistent sessions, and only within the grace', () => {
    expect(mayClaim(rec({ owner: 'addr:1' }), claim('addr:2'), 0, anon)).toBe(true)
    expect(mayClaim(rec({ owner: 'addr:1', responder: true }), claim('addr:2'), 0, anon)).toBe(false)
    expect(mayClaim(rec({ owner: 'addr:1', persistent: true, connected: false, endedAt: 100 }), claim('addr:2'), 500, anon)).toBe(false)
    expect(mayClaim(rec({ owner: 'addr:1', persistent: true, connected: false, endedAt: 100 }), claim('addr:2'), 1100, anon)).toBe(true)
  })
})

describe('record transitions', () => {
  it('a claim by the same owner keeps a persistent responder one; a clean reconnect or another owner does not', () => {
    const was = rec({ responder: true, persistent: true })
    expect(claimedRecord(was, claim('sub:v', true), 'l2')).toMatchObject({ responder: true, persistent: true, connected: true, lease: 'l2' })
    expect(claimedRecord(was, claim('sub:v', false), 'l2').responder).toBe(false)
    expect(claimedRecord(was, claim('sub:a', true), 'l2')).toMatchObject({ owner: 'sub:a', responder: false })
  })
  it('keptFor: while connected and (with auth) while persistent, until replaced; else for what is left of the grace', () => {
    expect(keptFor(rec({}), 0, auth)).toBeUndefined()
    expect(keptFor(endedRecord(rec({ persistent: true }), 100), 5000, auth)).toBeUndefined()
    expect(keptFor(endedRecord(rec({}), 100), 600, auth)).toBe(500)
    expect(keptFor(endedRecord(rec({}), 100), 5000, auth)).toBe(0)
    expect(keptFor(endedRecord(rec({ persistent: true }), 100), 600, anon)).toBe(500)
    expect(keptFor(endedRecord(rec({}), 100), 600, anon)).toBe(0)
    expect(keptFor(endedRecord(rec({ responder: true }), 100), 600, anon)).toBe(500)
  })
  it('without auth only a persistent session or a responder needs a stored record', () => {
    expect(needsStoring(rec({}), anon)).toBe(false)
    expect(needsStoring(rec({ responder: true }), anon)).toBe(true)
    expect(needsStoring(rec({ persistent: true }), anon)).toBe(true)
    expect(needsStoring(rec({}), auth)).toBe(true)
  })
  it('the codec round-trips, and anything else reads as no record', () => {
    const r = rec({ owner: 'sub:a "quoted" ü', persistent: true, responder: true, connected: false, endedAt: 123, lease: 'x.1' })
    expect(decodeRecord(encodeRecord(r))).toEqual(r)
    for (const bad of ['', 'null', '{}', '[1,2,3]', '["o",1,0,0,"t","l"]', '[1,1,0,0,5,"l"]']) expect(decodeRecord(bad), bad).toBeUndefined()
  })
})

describe('MemorySessionOwners', () => {
  const held = (r: Awaited<ReturnType<MemorySessionOwners['claim']>>): Lease => {
    if (!r.ok) throw new Error(`refused: ${r.why}`)
    return r.lease
  }
  it('only the current lease ends a session, so a takeover by the same owner is not undone by the old connection', async () => {
    const s = new MemorySessionOwners(auth)
    const first = held(await s.claim('id', claim('sub:v'), 0))
    const second = held(await s.claim('id', claim('sub:v'), 1))
    await s.end(first, 2)
    expect((await s.get('id'))?.connected).toBe(true)
    expect(await s.claim('id', claim('sub:a'), 3)).toEqual({ ok: false, why: 'taken' })
    await s.end(second, 4)
    expect((await s.claim('id', claim('sub:a'), 1003)).ok).toBe(false)
    expect((await s.claim('id', claim('sub:a'), 1004)).ok).toBe(true)
  })
  it('past maxRecords a new id is refused as full; bound ids keep working, and room comes back as bindings expire', async () => {
    const s = new MemorySessionOwners({ ...auth, maxRecords: 2 })
    held(await s.claim('a', claim('sub:v'), 0))
    held(await s.claim('b', claim('sub:v'), 0))
    expect(await s.claim('c', claim('sub:v'), 0)).toEqual({ ok: false, why: 'full' })
    expect((await s.claim('a', claim('sub:v'), 1)).ok).toBe(true)
    // 'x' ended at 0: its binding lasts until 1000, then it makes room.
    const big = new MemorySessionOwners({ ...auth, maxRecords: 2 })
    await big.end(held(await big.claim('x', claim('sub:v'), 0)), 0)
    held(await big.claim('y', claim('sub:v'), 0))
    expect((await big.claim('z', claim('sub:v'), 500)).ok).toBe(false)
    expect((await big.claim('z', claim('sub:v'), 1500)).ok).toBe(true)
  })
})
