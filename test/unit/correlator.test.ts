// Pending requests by correlation id (gateway/core/correlator.ts): first outcome wins.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Correlator, type Outcome } from '../../gateway/core/correlator.js'

const ok = (body: string): Outcome => ({ kind: 'reply', reply: { id: undefined, status: 200, headers: {}, body } })

describe('Correlator', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('hands the first outcome to the waiter, once, and forgets the id', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Array<[Outcome, string]> = []
    c.register('a', 'svc', 1000, (o, id) => got.push([o, id]))
    expect(c.has('a')).toBe(true)
    expect(c.size).toBe(1)
    expect(c.settle('a', ok('x'), 'svc')).toBeNull()
    expect(got).toEqual([[ok('x'), 'a']])
    expect(c.has('a')).toBe(false)
    expect(c.size).toBe(0)
    expect(c.settledCount).toBe(1)
    vi.advanceTimersByTime(5000)
    expect(got.length).toBe(1)
  })

  it('counts a second reply as a duplicate, not given to anyone', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Outcome[] = []
    c.register('a', 's', 1000, o => got.push(o))
    c.settle('a', ok('first'))
    expect(c.settle('a', ok('second'))).toBe('duplicate')
    expect(got).toEqual([ok('first')])
    expect(c.dropped.duplicate).toBe(1)
  })

  it('times out with RTW_REPLY_TIMEOUT at the deadline, then counts the reply as late', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Outcome[] = []
    c.register('a', 's', 300, o => got.push(o))
    vi.advanceTimersByTime(299)
    expect(got).toEqual([])
    vi.advanceTimersByTime(1)
    expect(got).toEqual([{ kind: 'error', code: 'RTW_REPLY_TIMEOUT' }])
    expect(c.timedOutCount).toBe(1)
    expect(c.size).toBe(0)
    expect(c.settle('a', ok('late'))).toBe('late')
    expect(c.dropped.late).toBe(1)
    expect(got.length).toBe(1)
  })

  it('counts a reply for an id it never saw as unknown', () => {
    const c = new Correlator({ maxInFlight: 10 })
    expect(c.settle('nope', ok('x'))).toBe('unknown')
    expect(c.dropped.unknown).toBe(1)
  })

  it('drops a reply from another service and keeps waiting for the right one [P-3.5]', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Outcome[] = []
    c.register('a', 'svc-a', 1000, o => got.push(o))
    expect(c.settle('a', ok('forged'), 'svc-b')).toBe('wrong-service')
    expect(c.dropped['wrong-service']).toBe(1)
    expect(c.has('a')).toBe(true)
    expect(c.settle('a', ok('real'), 'svc-a')).toBeNull()
    expect(got).toEqual([ok('real')])
  })

  it('keeps callers apart: each id settles only its own waiter', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Record<string, Outcome[]> = { a: [], b: [] }
    c.register('a', 's', 100, o => got.a?.push(o))
    c.register('b', 's', 1000, o => got.b?.push(o))
    vi.advanceTimersByTime(100)
    expect(c.settle('a', ok('late for a'))).toBe('late')
    expect(got.b).toEqual([])
    c.settle('b', ok('for b'))
    expect(got.b).toEqual([ok('for b')])
  })

  it('sets no timer for timeout 0', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Outcome[] = []
    c.register('a', 's', 0, o => got.push(o))
    vi.advanceTimersByTime(1e9)
    expect(got).toEqual([])
    expect(c.has('a')).toBe(true)
  })

  it('is full at maxInFlight', () => {
    const c = new Correlator({ maxInFlight: 2 })
    c.register('a', 's', 100, () => {})
    expect(c.full).toBe(false)
    c.register('b', 's', 100, () => {})
    expect(c.full).toBe(true)
    c.settle('a', ok('x'))
    expect(c.full).toBe(false)
  })

  it('fails every pending request at once, and later replies are late', () => {
    const c = new Correlator({ maxInFlight: 10 })
    const got: Array<[Outcome, string]> = []
    c.register('a', 's', 1000, (o, id) => got.push([o, id]))
    c.register('b', 's', 0, (o, id) => got.push([o, id]))
    c.failAll('RTW_SHUTTING_DOWN')
    expect(got).toEqual([[{ kind: 'error', code: 'RTW_SHUTTING_DOWN' }, 'a'], [{ kind: 'error', code: 'RTW_SHUTTING_DOWN' }, 'b']])
    expect(c.size).toBe(0)
    vi.advanceTimersByTime(5000)
    expect(got.length).toBe(2)
    expect(c.settle('a', ok('x'))).toBe('late')
  })

  it('remembers only the most recent settled ids; older ones become unknown', () => {
    const c = new Correlator({ maxInFlight: 10, recentSize: 2 })
    for (const id of ['a', 'b', 'c']) {
      c.register(id, 's', 1000, () => {})
      c.settle(id, ok(id))
    }
    expect(c.settle('a', ok('again'))).toBe('unknown')
    expect(c.settle('b', ok('again'))).toBe('duplicate')
    expect(c.settle('c', ok('again'))).toBe('duplicate')
  })

  it('counts drops it is told about (retained, undecodable)', () => {
    const c = new Correlator({ maxInFlight: 10 })
    c.drop('retained')
    c.drop('undecodable')
    c.drop('undecodable')
    expect(c.dropped).toMatchObject({ retained: 1, undecodable: 2, late: 0, duplicate: 0, unknown: 0 })
  })
})
