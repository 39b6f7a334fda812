// Pending requests by correlation id (PROTOCOL.md §5). The first outcome wins;
// anything after it is dropped and counted, never handed to another caller.
// No I/O: the only side effect is a timer per pending request.
import type { Reply } from './envelope.js'
import type { ErrorCode } from '../errors.js'

export type Outcome =
  | { kind: 'reply', reply: Reply }
  | { kind: 'error', code: ErrorCode, message?: string }

export type DropReason = 'late' | 'duplicate' | 'unknown' | 'retained' | 'undecodable' | 'wrong-service'

interface Pending {
  service: string
  timer: NodeJS.Timeout | undefined
  onSettle: (outcome: Outcome, id: string) => void
}

export interface CorrelatorOptions {
  maxInFlight: number
  /** How many settled ids to remember, to tell late and duplicate replies from unknown ones. */
  recentSize?: number
}

export class Correlator {
  private readonly pending = new Map<string, Pending>()
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
    const entry: Pending = { service, timer: undefined, onSettle }
    if (timeoutMs > 0) {
      entry.timer = setTimeout(() => {
        if (this.finish(id, entry, 'late')) {
          this.timedOutCount++
          onSettle({ kind: 'error', code: 'RTW_REPLY_TIMEOUT' }, id)
        }
      }, timeoutMs)
    }
    this.pending.set(id, entry)
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
  }

  private finish (id: string, entry: Pending, laterIs: 'late' | 'duplicate'): boolean {
    if (this.pending.get(id) !== entry) return false
    this.pending.delete(id)
    if (entry.timer !== undefined) clearTimeout(entry.timer)
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
