// Token buckets behind publishRate and connectRate, with an injected clock.
import { describe, expect, it } from 'vitest'
import { KeyedRateLimiter, TokenBucket } from '../../core/rate-limit.js'

describe('TokenBucket', () => {
  it('allows a burst of `burst` takes, then refuses until tokens refill', () => {
    const b = new TokenBucket(10, 5, 0)
    for (let i = 0; i < 5; i++) expect(b.take(0)).toBe(true)
    expect(b.take(0)).toBe(false)
    expect(b.take(99)).toBe(false) // 0.99 of a token
    expect(b.take(100)).toBe(true) // 10 per second: one token per 100 ms
    expect(b.take(100)).toBe(false)
  })

  it('never saves more than `burst` tokens, however long it idles', () => {
    const b = new TokenBucket(1000, 3, 0)
    let ok = 0
    for (let i = 0; i < 10; i++) if (b.take(3_600_000)) ok++
    expect(ok).toBe(3)
  })

  it('sustains exactly `rate` takes per second', () => {
    const b = new TokenBucket(100, 100, 0)
    let ok = 0
    for (let t = 0; t <= 10_000; t++) if (b.take(t)) ok++
    expect(ok).toBeGreaterThanOrEqual(100 + 1000 - 1)
    expect(ok).toBeLessThanOrEqual(100 + 1000 + 1)
  })

  it('ignores a clock that steps backwards', () => {
    const b = new TokenBucket(1, 1, 1000)
    expect(b.take(1000)).toBe(true)
    expect(b.take(0)).toBe(false)
    expect(b.take(2000)).toBe(true)
  })

  it('is idle only once it has refilled', () => {
    const b = new TokenBucket(10, 2, 0)
    expect(b.idle(0)).toBe(true)
    b.take(0)
    expect(b.idle(50)).toBe(false)
    expect(b.idle(100)).toBe(true)
  })
})

describe('KeyedRateLimiter', () => {
  it('keeps one bucket per key', () => {
    const l = new KeyedRateLimiter(1, 2)
    expect(l.take('a', 0)).toBe(true)
    expect(l.take('a', 0)).toBe(true)
    expect(l.take('a', 0)).toBe(false)
    expect(l.take('b', 0)).toBe(true)
  })

  it('forgets refilled buckets once it holds many keys, so a flood from many addresses stays bounded', () => {
    const l = new KeyedRateLimiter(100, 1, 1000)
    for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`, 0)
    expect(l.size).toBe(1000)
    // 10 ms later every bucket has refilled (100/s, burst 1): the next new key sweeps them.
    l.take('192.0.2.1', 10)
    expect(l.size).toBe(1)
  })

  it('keeps buckets that are still limiting', () => {
    const l = new KeyedRateLimiter(1, 1, 2)
    l.take('a', 0)
    l.take('b', 0)
    l.take('c', 10)
    expect(l.size).toBe(3)
    expect(l.take('a', 10)).toBe(false)
  })
})

describe('waiting for a token instead of being refused', () => {
  it('takeOrWait: 0 while tokens last, then the ms until the next one, taking nothing', () => {
    const b = new TokenBucket(10, 2, 0)
    expect(b.takeOrWait(0)).toBe(0)
    expect(b.takeOrWait(0)).toBe(0)
    expect(b.takeOrWait(0)).toBe(100)
    expect(b.takeOrWait(40)).toBe(60)
    expect(b.takeOrWait(100)).toBe(0)
  })

  it('reserve: each caller in line gets a later turn, and none past the bound', () => {
    const l = new KeyedRateLimiter(50, 50, 10)
    const waits = Array.from({ length: 60 }, () => l.reserve('a', 0, 150))
    expect(waits.slice(0, 50)).toEqual(Array.from({ length: 50 }, () => 0))
    expect(waits.slice(50, 57)).toEqual([20, 40, 60, 80, 100, 120, 140])
    // The 58th would wait 160 ms: refused, and it reserves nothing.
    expect(waits.slice(57)).toEqual([-1, -1, -1])
    expect(l.reserve('a', 20, 150)).toBe(140)
    // Another address has its own line.
    expect(l.reserve('b', 0, 150)).toBe(0)
  })
})
