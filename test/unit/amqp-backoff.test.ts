import { describe, expect, it } from 'vitest'
import { reconnectDelay } from '../../core/backoff.js'

describe('reconnect backoff with jitter', () => {
  it('doubles per attempt up to the cap, half fixed and half random', () => {
    expect(reconnectDelay(0, 100, 5000, () => 0)).toBe(50)
    expect(reconnectDelay(0, 100, 5000, () => 1)).toBe(100)
    expect(reconnectDelay(3, 100, 5000, () => 0)).toBe(400)
    expect(reconnectDelay(3, 100, 5000, () => 1)).toBe(800)
    expect(reconnectDelay(10, 100, 5000, () => 1)).toBe(5000)
    expect(reconnectDelay(1000, 100, 5000, () => 0)).toBe(2500)
  })

  it('never exceeds the cap and never reaches zero', () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const d = reconnectDelay(attempt, 100, 5000)
      expect(d).toBeGreaterThanOrEqual(50)
      expect(d).toBeLessThanOrEqual(5000)
    }
  })

  it('spreads reconnects of many clients (jitter)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => reconnectDelay(6, 100, 5000)))
    expect(delays.size).toBeGreaterThan(10)
  })
})
