import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Deadlines, type DeadlineEntry } from '../../core/deadlines.js'

interface E extends DeadlineEntry { name: string }
const entry = (name: string): E => ({ name, deadline: 0, prev: undefined, next: undefined, list: undefined })

describe('Deadlines (one timer per distinct timeout)', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('expires entries in the order added, each no earlier than its own timeout', () => {
    const expired: string[] = []
    const d = new Deadlines<E>(e => expired.push(`${e.name}@${Math.round(performance.now())}`))
    const t0 = performance.now()
    d.add(entry('a'), 100)
    vi.advanceTimersByTime(30)
    d.add(entry('b'), 100)
    d.add(entry('c'), 50)
    vi.advanceTimersByTime(69)
    expect(expired).toEqual([`c@${Math.round(t0 + 80)}`])
    vi.advanceTimersByTime(1)
    expect(expired.slice(1)).toEqual([`a@${Math.round(t0 + 100)}`])
    vi.advanceTimersByTime(29)
    expect(expired).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(expired.slice(2)).toEqual([`b@${Math.round(t0 + 130)}`])
  })

  it('never expires a removed entry, wherever it was in the list', () => {
    const expired: string[] = []
    const d = new Deadlines<E>(e => expired.push(e.name))
    const es = ['a', 'b', 'c', 'd', 'e'].map(entry)
    for (const e of es) d.add(e, 10)
    d.remove(es[0] as E)
    d.remove(es[2] as E)
    d.remove(es[4] as E)
    d.remove(es[4] as E)
    vi.advanceTimersByTime(10)
    expect(expired).toEqual(['b', 'd'])
    expect(es.every(e => e.list === undefined && e.prev === undefined && e.next === undefined)).toBe(true)
  })

  it('keeps expiring after the list empties and fills again, and for entries added while expiring', () => {
    const expired: string[] = []
    const d = new Deadlines<E>(e => {
      expired.push(e.name)
      if (e.name === 'b') d.add(entry('from-b'), 20)
    })
    const a = entry('a')
    d.add(a, 20)
    d.remove(a)
    vi.advanceTimersByTime(5)
    d.add(entry('b'), 20)
    vi.advanceTimersByTime(19)
    expect(expired).toEqual([])
    vi.advanceTimersByTime(1)
    expect(expired).toEqual(['b'])
    vi.advanceTimersByTime(19)
    expect(expired).toEqual(['b'])
    vi.advanceTimersByTime(1)
    expect(expired).toEqual(['b', 'from-b'])
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('Deadlines with real timers', () => {
  it('holds the process open only while an entry waits', () => {
    const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
    const before = timers()
    const d = new Deadlines<E>(() => {})
    const a = entry('a')
    d.add(a, 60_000)
    expect(timers()).toBe(before + 1)
    d.remove(a)
    expect(timers()).toBe(before)
    d.add(a, 60_000)
    expect(timers()).toBe(before + 1)
    d.remove(a)
  })
})
