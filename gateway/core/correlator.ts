// Pending requests by correlation id (PROTOCOL.md §5). The first outcome wins;
// anything after it is dropped and counted, never handed to another caller.
// No I/O: the only side effects are timers, one per distinct timeout in use.
import type { Reply } from './envelope.js'
import type { ErrorCode } from '../errors.js'

export type Outcome =
  | { kind: 'reply', reply: Reply }
  | { kind: 'error', code: ErrorCode, message?: string }

export type DropReason = 'late' | 'duplicate' | 'unknown' | 'retained' | 'undecodable' | 'wrong-service'

interface Pending {
  id: string
  service: string
  onSettle: (outcome: Outcome, id: string) => void
  /** performance.now() at which it times out; its place in `queue`'s list. */
  deadline: number
  queue: DeadlineQueue | undefined
  prev: Pending | undefined
  next: Pending | undefined
}

/**
 * The pending requests that share one timeout, oldest first. Their deadlines
 * can only grow along the list, so one timer, armed for the head's deadline,
 * serves them all: a request that settles just leaves the list, instead of
 * costing a setTimeout and a clearTimeout each (~4% of the gateway's CPU).
 */
interface DeadlineQueue {
  readonly timeoutMs: number
  head: Pending | undefined
  tail: Pending | undefined
  timer: NodeJS.Timeout | undefined
  /** Whether the timer keeps the process alive: only while a request waits on it, as a timer per request would. */
  refed: boolean
}

export interface CorrelatorOptions {
  maxInFlight: number
  /** How many settled ids to remember, to tell late and duplicate replies from unknown ones. */
  recentSize?: number
}

export class Correlator {
  private readonly pending = new Map<string, Pending>()
  private readonly queues = new Map<number, DeadlineQueue>()
  private readonly recent = new Map<string, 'late' | 'duplicate'>()
  // The ids in `recent`, oldest first, as a ring. Evicting through
  // recent.keys().next() instead cost ~5 µs a request: a Map keeps deleted
  // entries as holes that every new iterator walks past until V8 rehashes.
  private readonly recentOrder: Array<string | undefined>
  private recentNext = 0
  private readonly recentSize: number
  private readonly maxInFlight: number
  readonly dropped: Record<DropReason, number> = { late: 0, duplicate: 0, unknown: 0, retained: 0, undecodable: 0, 'wrong-service': 0 }
  settledCount = 0
  timedOutCount = 0

  constructor (opts: CorrelatorOptions) {
    this.maxInFlight = opts.maxInFlight
    this.recentSize = opts.recentSize ?? 10_000
    this.recentOrder = new Array<string | undefined>(this.recentSize).fill(undefined)
  }

  get size (): number {
    return this.pending.size
  }

  get full (): boolean {
    return this.pending.size >= this.maxInFlight
  }

  has (id: string): boolean {
    return this.pending.has(id)
  }

  /**
   * Registers the waiter before anything is published [P-5.2], so a reply that
   * beats the publish callback still finds it. timeoutMs 0 means no timer.
   */
  register (id: string, service: string, timeoutMs: number, onSettle: (outcome: Outcome, id: string) => void): void {
    const entry: Pending = { id, service, onSettle, deadline: 0, queue: undefined, prev: undefined, next: undefined }
    if (timeoutMs > 0) {
      let q = this.queues.get(timeoutMs)
      if (q === undefined) {
        q = { timeoutMs, head: undefined, tail: undefined, timer: undefined, refed: false }
        this.queues.set(timeoutMs, q)
      }
      entry.deadline = performance.now() + timeoutMs
      entry.queue = q
      entry.prev = q.tail
      if (q.tail === undefined) q.head = entry
      else q.tail.next = entry
      q.tail = entry
      if (q.timer === undefined) this.arm(q, timeoutMs)
      else if (!q.refed) {
        q.timer.ref()
        q.refed = true
      }
    }
    this.pending.set(id, entry)
  }

  private arm (q: DeadlineQueue, delayMs: number): void {
    q.timer = setTimeout(() => this.expire(q), delayMs)
    q.refed = true
  }

  /** The queue's timer fired: time out every request whose deadline has come, then wait for the next one. */
  private expire (q: DeadlineQueue): void {
    q.timer = undefined
    const now = performance.now()
    let e = q.head
    while (e !== undefined && e.deadline <= now) {
      // finish() unlinks it; its callback may register or settle others, so re-read the head.
      if (this.finish(e.id, e, 'late')) {
        this.timedOutCount++
        e.onSettle({ kind: 'error', code: 'RTW_REPLY_TIMEOUT' }, e.id)
      }
      e = q.head
    }
    if (q.timer !== undefined) return
    if (q.head !== undefined) this.arm(q, Math.min(q.timeoutMs, Math.max(1, Math.ceil(q.head.deadline - now))))
    else if (this.queues.get(q.timeoutMs) === q) this.queues.delete(q.timeoutMs)
  }

  private unlink (entry: Pending): void {
    const q = entry.queue
    if (q === undefined) return
    if (entry.prev === undefined) q.head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) q.tail = entry.prev
    else entry.next.prev = entry.prev
    entry.queue = entry.prev = entry.next = undefined
    // An empty queue keeps its timer for the next request, but no longer holds the process open.
    if (q.head === undefined && q.refed && q.timer !== undefined) {
      q.timer.unref()
      q.refed = false
    }
  }

  /** [P-5.3] First outcome wins. Returns why the outcome was dropped, or null if it was delivered. */
  settle (id: string, outcome: Outcome, service?: string): DropReason | null {
    const entry = this.pending.get(id)
    if (entry === undefined) {
      const reason = this.recent.get(id) ?? 'unknown'
      this.dropped[reason]++
      return reason
    }
    // [P-3.5] a reply must come from the service the request was sent to.
    if (service !== undefined && service !== entry.service) {
      this.dropped['wrong-service']++
      return 'wrong-service'
    }
    this.finish(id, entry, 'duplicate')
    this.settledCount++
    entry.onSettle(outcome, id)
    return null
  }

  /** Counts a reply that was dropped before it could be matched (retained, undecodable). */
  drop (reason: DropReason): void {
    this.dropped[reason]++
  }

  /** Settles every pending request with the same error, e.g. on shutdown. */
  failAll (code: ErrorCode): void {
    for (const [id, entry] of this.pending) {
      this.finish(id, entry, 'late')
      entry.onSettle({ kind: 'error', code }, id)
    }
    for (const q of this.queues.values()) {
      if (q.head === undefined && q.timer !== undefined) {
        clearTimeout(q.timer)
        q.timer = undefined
      }
    }
  }

  private finish (id: string, entry: Pending, laterIs: 'late' | 'duplicate'): boolean {
    if (this.pending.get(id) !== entry) return false
    this.pending.delete(id)
    this.unlink(entry)
    if (this.recentSize > 0) {
      const oldest = this.recentOrder[this.recentNext]
      if (oldest !== undefined) this.recent.delete(oldest)
      this.recentOrder[this.recentNext] = id
      this.recentNext = (this.recentNext + 1) % this.recentSize
      this.recent.set(id, laterIs)
    }
    return true
  }
}
