// Who may take a client id [P-4.7]: the pure decision and the in-memory store.
import { describe, expect, it } from 'vitest'
import { MemorySessionOwners, mayClaim, type SessionRecord } from '../../core/sessions.js'

const rec = (over: Partial<SessionRecord>): SessionRecord => ({ owner: 'sub:v', persistent: false, responder: false, connected: true, endedAt: 0, lease: 1, ...over })
const auth = { auth: true, graceMs: 1000 }
const anon = { auth: false, graceMs: 1000 }
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

describe('MemorySessionOwners', () => {
  it('only the current lease ends a session, so a takeover by the same owner is not undone by the old connection', async () => {
    const s = new MemorySessionOwners(auth)
    const first = await s.claim('id', claim('sub:v'), 0)
    const second = await s.claim('id', claim('sub:v'), 1)
    expect(first).not.toBeNull()
    s.end('id', first!, 2)
    expect((await s.get('id'))?.connected).toBe(true)
    expect(await s.claim('id', claim('sub:a'), 3)).toBeNull()
    s.end('id', second!, 4)
    expect(await s.claim('id', claim('sub:a'), 1003)).toBeNull()
    expect(await s.claim('id', claim('sub:a'), 1004)).not.toBeNull()
  })
})
