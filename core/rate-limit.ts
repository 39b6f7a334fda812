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

  private refill (now: number): void {
    const elapsed = now - this.last
    if (elapsed > 0) {
      const t = this.tokens + elapsed * this.rate / 1000
      this.tokens = t > this.burst ? this.burst : t
      this.last = now
    }
  }

  /** Takes one token; false when none is left. */
  take (now: number): boolean {
    this.refill(now)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    return false
  }

  /** Takes one token now, or else says in how many ms one will be there (and takes nothing). */
  takeOrWait (now: number): number {
    if (this.take(now)) return 0
    return Math.max(1, Math.ceil((1 - this.tokens) * 1000 / this.rate))
  }

  /**
   * Reserves the next token, going into debt: 0 when one is there now, else
   * the ms until the reserved one is (callers waiting in line get later
   * times). Reserves nothing, and returns -1, when that would be past `maxWaitMs`.
   */
  reserve (now: number, maxWaitMs: number): number {
    this.refill(now)
    const wait = this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * 1000 / this.rate)
    if (wait > maxWaitMs) return -1
    this.tokens -= 1
    return wait
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

  private bucket (key: string, now: number): TokenBucket {
    let b = this.buckets.get(key)
    if (b === undefined) {
      if (this.buckets.size >= this.sweepAbove) this.sweep(now)
      b = new TokenBucket(this.rate, this.burst, now)
      this.buckets.set(key, b)
    }
    return b
  }

  take (key: string, now: number): boolean {
    return this.bucket(key, now).take(now)
  }

  /** TokenBucket.reserve for this key's bucket. */
  reserve (key: string, now: number, maxWaitMs: number): number {
    return this.bucket(key, now).reserve(now, maxWaitMs)
  }

  get size (): number {
    return this.buckets.size
  }

  sweep (now: number): void {
    for (const [key, b] of this.buckets) if (b.idle(now)) this.buckets.delete(key)
  }
}
