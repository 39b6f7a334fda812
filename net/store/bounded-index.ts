// The bookkeeping shared by the local backends (memory, LevelDB): which keys
// exist, when each expires, and how many bytes they hold. Pure: no I/O, no
// timers; the backend sweeps and stores the values.
import type { StoreBounds, StoreStats } from './store.js'

interface Slot { expiresAt: number, bytes: number, seq: number }

/** A min-heap of expiry times; stale items (a key put again or deleted) are skipped when popped. */
class ExpiryHeap {
  private readonly items: Array<{ at: number, key: string, seq: number }> = []

  get size (): number { return this.items.length }

  push (at: number, key: string, seq: number): void {
    const a = this.items
    a.push({ at, key, seq })
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if ((a[p] as { at: number }).at <= at) break
      ;[a[p], a[i]] = [a[i] as typeof a[number], a[p] as typeof a[number]]
      i = p
    }
  }

  peek (): { at: number, key: string, seq: number } | undefined { return this.items[0] }

  pop (): void {
    const a = this.items
    const last = a.pop()
    if (last === undefined || a.length === 0) return
    a[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < a.length && (a[l] as typeof last).at < (a[m] as typeof last).at) m = l
      if (r < a.length && (a[r] as typeof last).at < (a[m] as typeof last).at) m = r
      if (m === i) break
      ;[a[m], a[i]] = [a[i] as typeof last, a[m] as typeof last]
      i = m
    }
  }
}

export type Admission = { ok: true, evicted: string[] } | { ok: false }

export class BoundedIndex {
  /** In insertion order (a put moves a key to the end): the oldest is evicted first. */
  private readonly slots = new Map<string, Slot>()
  private readonly heap = new ExpiryHeap()
  private seq = 0
  private total = 0
  readonly counters = { stored: 0, expired: 0, evicted: 0, refused: 0 }

  constructor (private readonly bounds: StoreBounds) {}

  live (key: string, now: number): boolean {
    const s = this.slots.get(key)
    return s !== undefined && s.expiresAt > now
  }

  /** Changes with every admit of the key: equal versions mean nobody wrote it in between. Undefined when absent or expired. */
  version (key: string, now: number): number | undefined {
    const s = this.slots.get(key)
    return s !== undefined && s.expiresAt > now ? s.seq : undefined
  }

  /** Records a key of `bytes` expiring at `expiresAt`, evicting or refusing per the bounds. */
  admit (key: string, bytes: number, expiresAt: number, now: number): Admission {
    const old = this.slots.get(key)
    const isNew = old === undefined || old.expiresAt <= now
    const evicted: string[] = []
    const over = (): boolean => (isNew && this.slots.size - (old === undefined ? 0 : 1) + 1 > this.bounds.maxEntries) ||
      this.total - (old?.bytes ?? 0) + bytes > this.bounds.maxBytes
    if (over() && isNew && this.bounds.whenFull === 'refuse') {
      this.counters.refused++
      return { ok: false }
    }
    while (over()) {
      const oldest = this.oldestOther(key)
      if (oldest === undefined) break
      this.remove(oldest)
      this.counters.evicted++
      evicted.push(oldest)
    }
    if (old !== undefined) {
      this.slots.delete(key)
      this.total -= old.bytes
    }
    const seq = ++this.seq
    this.slots.set(key, { expiresAt, bytes, seq })
    this.total += bytes
    if (Number.isFinite(expiresAt)) this.heap.push(expiresAt, key, seq)
    this.counters.stored++
    return { ok: true, evicted }
  }

  private oldestOther (key: string): string | undefined {
    for (const k of this.slots.keys()) if (k !== key) return k
    return undefined
  }

  remove (key: string): boolean {
    const s = this.slots.get(key)
    if (s === undefined) return false
    this.slots.delete(key)
    this.total -= s.bytes
    return true
  }

  /** Removes and returns the keys whose TTL has passed. */
  sweep (now: number): string[] {
    const gone: string[] = []
    for (let top = this.heap.peek(); top !== undefined && top.at <= now; top = this.heap.peek()) {
      this.heap.pop()
      const s = this.slots.get(top.key)
      if (s === undefined || s.seq !== top.seq) continue
      this.remove(top.key)
      this.counters.expired++
      gone.push(top.key)
    }
    return gone
  }

  /** The soonest expiry still pending, for the sweep timer. */
  get nextExpiry (): number | undefined {
    return this.heap.peek()?.at
  }

  stats (): StoreStats {
    return { entries: this.slots.size, bytes: this.total, ...this.counters }
  }
}
