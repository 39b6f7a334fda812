// Pending requests by correlation id (core/correlator.ts): first outcome wins.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Correlator, type Outcome } from '../../core/correlator.js'

const ok = (body: string): Outcome => ({ kind: 'reply', reply: { id: undefined, status: 200, headers: {}, body } })

describe('Correlator', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('hands the first outcome to the waiter, once, and forgets the id', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Array<[Outcome, string]> = []
    const a = c.nextId()
    c.register(a, 'svc', 1000, (o, id) => got.push([o, id]))
    expect(c.has(a)).toBe(true)
    expect(c.size).toBe(1)
    expect(c.settle(a, ok('x'), 'svc')).toBeNull()
    expect(got).toEqual([[ok('x'), a]])
    expect(c.has(a)).toBe(false)
    expect(c.size).toBe(0)
    expect(c.settledCount).toBe(1)
    vi.advanceTimersByTime(5000)
    expect(got.length).toBe(1)
  })

  it('counts a second reply as a duplicate, not given to anyone', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const got: Outcome[] = []
    c.register(a, 's', 1000, o => got.push(o))
    c.settle(a, ok('first'))
    expect(c.settle(a, ok('second'))).toBe('duplicate')
    expect(got).toEqual([ok('first')])
    expect(c.dropped.duplicate).toBe(1)
  })

  it('times out with RTW_REPLY_TIMEOUT at the deadline, then counts the reply as late', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const got: Outcome[] = []
    c.register(a, 's', 300, o => got.push(o))
    vi.advanceTimersByTime(299)
    expect(got).toEqual([])
    vi.advanceTimersByTime(1)
    expect(got).toEqual([{ kind: 'error', code: 'RTW_REPLY_TIMEOUT' }])
    expect(c.timedOutCount).toBe(1)
    expect(c.size).toBe(0)
    expect(c.settle(a, ok('late'))).toBe('late')
    expect(c.dropped.late).toBe(1)
    expect(got.length).toBe(1)
  })

  it('counts a reply for an id it never saw as unknown', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const issued = c.nextId()
    expect(c.settle('nope', ok('x'))).toBe('unknown')
    // Our prefix, but a sequence number never issued, or not one at all.
    expect(c.settle(issued.slice(0, -1) + 'zz', ok('x'))).toBe('unknown')
    expect(c.settle(issued + '!', ok('x'))).toBe('unknown')
    expect(c.dropped.unknown).toBe(3)
  })

  it('drops a reply from another service and keeps waiting for the right one [P-3.5]', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const got: Outcome[] = []
    c.register(a, 'svc-a', 1000, o => got.push(o))
    expect(c.settle(a, ok('forged'), 'svc-b')).toBe('wrong-service')
    expect(c.dropped['wrong-service']).toBe(1)
    expect(c.has(a)).toBe(true)
    expect(c.settle(a, ok('real'), 'svc-a')).toBeNull()
    expect(got).toEqual([ok('real')])
  })

  it('keeps callers apart: each id settles only its own waiter', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const b = c.nextId()
    const got: Record<string, Outcome[]> = { a: [], b: [] }
    c.register(a, 's', 100, o => got.a?.push(o))
    c.register(b, 's', 1000, o => got.b?.push(o))
    vi.advanceTimersByTime(100)
    expect(c.settle(a, ok('late for a'))).toBe('late')
    expect(got.b).toEqual([])
    c.settle(b, ok('for b'))
    expect(got.b).toEqual([ok('for b')])
  })

  it('sets no timer for timeout 0', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const got: Outcome[] = []
    c.register(a, 's', 0, o => got.push(o))
    vi.advanceTimersByTime(1e9)
    expect(got).toEqual([])
    expect(c.has(a)).toBe(true)
  })

  it('is full at maxInFlight', () => {
    const c = new Correlator({ maxInFlight: 2 })
    const a = c.nextId()
    const b = c.nextId()
    c.register(a, 's', 100, () => {})
    expect(c.full).toBe(false)
    c.register(b, 's', 100, () => {})
    expect(c.full).toBe(true)
    c.settle(a, ok('x'))
    expect(c.full).toBe(false)
  })

  it('fails every pending request at once, and later replies are late', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const a = c.nextId()
    const b = c.nextId()
    const got: Array<[Outcome, string]> = []
    c.register(a, 's', 1000, (o, id) => got.push([o, id]))
    c.register(b, 's', 0, (o, id) => got.push([o, id]))
    c.failAll('RTW_SHUTTING_DOWN')
    expect(got).toEqual([[{ kind: 'error', code: 'RTW_SHUTTING_DOWN' }, a], [{ kind: 'error', code: 'RTW_SHUTTING_DOWN' }, b]])
    expect(c.size).toBe(0)
    vi.advanceTimersByTime(5000)
    expect(got.length).toBe(2)
    expect(c.settle(a, ok('x'))).toBe('late')
  })

  it('remembers only the most recent settled ids; older ones become unknown', () => {
    const c = new Correlator({ maxInFlight: 10, recentSize: 2 })
    const ids = [c.nextId(), c.nextId(), c.nextId()] as [string, string, string]
    for (const id of ids) {
      c.register(id, 's', 1000, () => {})
      c.settle(id, ok(id))
    }
    expect(c.settle(ids[0], ok('again'))).toBe('unknown')
    expect(c.settle(ids[1], ok('again'))).toBe('duplicate')
    expect(c.settle(ids[2], ok('again'))).toBe('duplicate')
  })

  it('finds a long-pending request after its slot came round again, and keeps others apart', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: string[] = []
    const text = (o: Outcome): string => o.kind === 'reply' ? String(o.reply.body) : o.code
    const first = c.nextId()
    c.register(first, 's', 60_000, o => got.push(`first:${text(o)}`))
    // Far more requests than there are slots pass while the first one waits.
    for (let i = 0; i < 1000; i++) {
      const id = c.nextId()
      c.register(id, 's', 1000, o => got.push(`${i}:${text(o)}`))
      expect(c.settle(id, ok(String(i)))).toBeNull()
    }
    expect(c.size).toBe(1)
    expect(c.settle(first, ok('still-waited-for'))).toBeNull()
    expect(got.length).toBe(1001)
    expect(got[0]).toBe('0:0')
    expect(got[999]).toBe('999:999')
    expect(got[1000]).toBe('first:still-waited-for')
    expect(c.size).toBe(0)
  })

  it('takes ids it did not make, without telling duplicate from unknown for them', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Outcome[] = []
    c.register('foreign', 's', 1000, o => got.push(o))
    expect(c.has('foreign')).toBe(true)
    expect(c.settle('foreign', ok('x'))).toBeNull()
    expect(got).toEqual([ok('x')])
    expect(c.settle('foreign', ok('again'))).toBe('unknown')
  })

  it('cancels a waiter whose caller left: RTW_CALLER_GONE at once, its slot free, a later reply late [P-5.7]', () => {
    const c = new Correlator({ maxInFlight: 1 })
    const got: Outcome[] = []
    const id = c.nextId()
    c.register(id, 's', 60_000, o => got.push(o))
    expect(c.full).toBe(true)
    expect(c.cancel(id)).toBe(true)
    expect(got).toEqual([{ kind: 'error', code: 'RTW_CALLER_GONE' }])
    expect(c.full).toBe(false)
    expect(c.cancelledCount).toBe(1)
    expect(c.cancel(id)).toBe(false)
    expect(c.settle(id, ok('too late'))).toBe('late')
    vi.advanceTimersByTime(60_000)
    expect(got.length).toBe(1)
  })

  it('counts drops it is told about (retained, undecodable)', () => {
    const c = new Correlator({ maxInFlight: 10 })
    c.drop('retained')
    c.drop('undecodable')
    c.drop('undecodable')
    expect(c.dropped).toMatchObject({ retained: 1, undecodable: 2, late: 0, duplicate: 0, unknown: 0 })
  })
})

describe('correlation ids are unguessable [P-5.1]', () => {
  it('carry 64 random bits each: consecutive ids share no random part, and a guessed one settles nothing', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const ids = Array.from({ length: 2000 }, () => c.nextId())
    const randomParts = new Set(ids.map(id => id.slice(0, 11)))
    expect(randomParts.size).toBe(ids.length)
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{11}[0-9a-z]+$/)
    const next = c.nextId()
    const got: Outcome[] = []
    c.register(next, 's', 1000, o => got.push(o))
    // The attacker knows the sequence number (the last id it saw, plus one) but not the random part.
    const guessed = ids.at(-1)!.slice(0, 11) + next.slice(11)
    expect(c.settle(guessed, ok('forged'))).toBe('unknown')
    expect(c.has(next)).toBe(true)
    expect(c.settle(next, ok('real'))).toBeNull()
    expect(got).toEqual([ok('real')])
    // A forged id for an already settled request is unknown too, not "duplicate".
    expect(c.settle(ids.at(-1)!.slice(0, 11) + next.slice(11), ok('again'))).toBe('unknown')
    expect(c.settle(next, ok('again'))).toBe('duplicate')
  })

  it('puts a configured prefix in front', () => {
    const c = new Correlator({ maxInFlight: 10, prefix: 'n1.' })
    const id = c.nextId()
    expect(id.startsWith('n1.')).toBe(true)
    const got: Outcome[] = []
    c.register(id, 's', 1000, o => got.push(o))
    expect(c.settle(id, ok('x'))).toBeNull()
  })
})
