// Token buckets for the publish and connection rate limits (README "Limits").
// Pure: the caller passes the clock, so tests need no timers. No allocation per take().

/** `rate` tokens per second, at most `burst` saved up; starts full. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor (private readonly rate: number, private readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  /** Takes one token; false when none is left (the caller drops or refuses). */
  take (now: number): boolean {
    const elapsed = now - this.last
    if (elapsed > 0) {
      const t = this.tokens + elapsed * this.rate / 1000
      this.tokens = t > this.burst ? this.burst : t
      this.last = now
    }
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    return false
  }

  /** True when the bucket would be full at `now`: it holds no state worth keeping. */
  idle (now: number): boolean {
    return this.tokens + (now - this.last) * this.rate / 1000 >= this.burst
  }
}

/**
 * One bucket per key (a remote address). Buckets that have refilled are
 * forgotten once more than `sweepAbove` keys are held, so a flood from many
 * addresses costs memory only for the addresses active in the last second or so.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor (
    private readonly rate: number,
    private readonly burst: number,
    private readonly sweepAbove = 10_000
  ) {}

  take (key: string, now: number): boolean {
    let b = this.buckets.get(key)
    if (b === undefined) {
      if (this.buckets.size >= this.sweepAbove) this.sweep(now)
      b = new TokenBucket(this.rate, this.burst, now)
      this.buckets.set(key, b)
    }
    return b.take(now)
  }

  get size (): number {
    return this.buckets.size
  }

  sweep (now: number): void {
    for (const [key, b] of this.buckets) if (b.idle(now)) this.buckets.delete(key)
  }
}
