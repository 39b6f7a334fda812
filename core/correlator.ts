// Pending requests by correlation id (PROTOCOL.md §5). The first outcome wins;
// anything after it is dropped and counted, never handed to another caller.
// No I/O: the only side effect is a timer per distinct timeout (./deadlines.ts).
import { randomBytes, randomFillSync } from 'node:crypto'
import type { Reply } from './envelope.js'
import type { ErrorCode } from './errors.js'
import { Deadlines, type DeadlineEntry } from './deadlines.js'

export type Outcome =
  | { kind: 'reply', reply: Reply }
  | { kind: 'error', code: ErrorCode, message?: string }

export type DropReason = 'late' | 'duplicate' | 'unknown' | 'retained' | 'undecodable' | 'wrong-service' | 'not-asked'

interface Pending extends DeadlineEntry {
  id: string
  /** The sequence number inside an id from nextId(), or -1 for any other id. */
  seq: number
  service: string
  onSettle: (outcome: Outcome, id: string) => void
}

export interface CorrelatorOptions {
  maxInFlight: number
  /** Put before every id, e.g. to tell which node made it; "" by default. Not secret, not random. */
  prefix?: string
  /** How many of the latest ids to remember once settled, to tell late and duplicate replies from unknown ones. */
  recentSize?: number
}

const LATE = 1
const DUPLICATE = 2

/** Length of a node id: in a cluster, the prefix of every id a node makes [P-5.1]. */
export const NODE_ID_LENGTH = 8

/** A fresh random node id (6 random bytes, base64url) [P-5.1]. */
export function randomNodeId (): string {
  return randomBytes(6).toString('base64url')
}

// [P-5.1] 64 random bits per id, as 11 base64url characters, drawn from a pool
// refilled 512 ids at a time: one system call per 512 requests, not one each.
const RANDOM_BYTES = 8
const RANDOM_CHARS = 11
const POOL_IDS = 512
const pool = Buffer.alloc(RANDOM_BYTES * POOL_IDS)
let poolAt = pool.length

function randomPart (): string {
  if (poolAt === pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  const out = pool.toString('base64url', poolAt, poolAt + RANDOM_BYTES)
  poolAt += RANDOM_BYTES
  return out
}

/** A 32-bit digest of an id's random part, to tell a late reply from a forged one. */
function tagOf (id: string, from: number): number {
  let h = 0x811c9dc5
  for (let i = from; i < from + RANDOM_CHARS && i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/**
 * Why there is no Map from id to waiter here: a Map that lives long and
 * churns one entry per request rehashes into new tables every few dozen
 * requests, and a discarded table that reached the old generation still
 * points at the young waiters it held. V8's scavenger treats those stale
 * pointers as live, so every request's whole object graph (Fastify request
 * and reply, buffers, closures) was promoted and later freed by a full GC:
 * about a third of the gateway's CPU under load. A fixed array of slots,
 * indexed by the id's sequence number and cleared on settle, holds no stale
 * pointers. The same goes for remembering settled ids: two typed arrays.
 */
export class Correlator {
  /**
   * [P-5.1] An id is the prefix, 64 fresh random bits and a sequence number:
   * unique per process by the sequence number, and unguessable, so seeing one
   * id says nothing about the next. The sequence number picks the waiter's slot.
   */
  private readonly prefix: string
  /** Where the sequence number starts in an id: after the prefix and the random part. */
  private readonly seqAt: number
  private seq = 0
  private readonly slots: Array<Pending | undefined>
  private readonly mask: number
  /** Waiters whose slot was still taken by a long-pending request, and ids not made by nextId(). */
  private readonly overflow = new Map<string, Pending>()
  private count = 0
  private readonly recentSeq: Float64Array
  private readonly recentTag: Uint32Array
  private readonly recentKind: Uint8Array
  private readonly maxInFlight: number
  readonly dropped: Record<DropReason, number> = { late: 0, duplicate: 0, unknown: 0, retained: 0, undecodable: 0, 'wrong-service': 0, 'not-asked': 0 }
  settledCount = 0
  timedOutCount = 0
  cancelledCount = 0
  private readonly deadlines = new Deadlines<Pending>(entry => {
    if (this.finish(entry, LATE)) {
      this.timedOutCount++
      entry.onSettle({ kind: 'error', code: 'RTW_REPLY_TIMEOUT' }, entry.id)
    }
  })

  constructor (opts: CorrelatorOptions) {
    this.maxInFlight = opts.maxInFlight
    this.prefix = opts.prefix ?? ''
    this.seqAt = this.prefix.length + RANDOM_CHARS
    let size = 64
    while (size < Math.min(opts.maxInFlight, 16_384)) size *= 2
    this.slots = new Array<Pending | undefined>(size).fill(undefined)
    this.mask = size - 1
    const recent = opts.recentSize ?? 10_000
    this.recentSeq = new Float64Array(recent).fill(-1)
    this.recentTag = new Uint32Array(recent)
    this.recentKind = new Uint8Array(recent)
  }

  /** The id nextId() made last, and its sequence number: register() is nearly always given it. */
  private lastId = ''
  private lastSeq = -1

  /** A fresh correlation id: the prefix, 64 random bits and a sequence number [P-5.1]. */
  nextId (): string {
    this.lastSeq = this.seq++
    this.lastId = this.prefix + randomPart() + this.lastSeq.toString(36)
    return this.lastId
  }

  get size (): number {
    return this.count
  }

  get full (): boolean {
    return this.count >= this.maxInFlight
  }

  has (id: string): boolean {
    return this.find(id) !== undefined
  }

  /**
   * Registers the waiter before anything is published [P-5.2], so a reply that
   * beats the publish callback still finds it. timeoutMs 0 means no timer.
   */
  register (id: string, service: string, timeoutMs: number, onSettle: (outcome: Outcome, id: string) => void): void {
    const seq = id === this.lastId ? this.lastSeq : this.seqOf(id)
    const entry: Pending = { id, seq, service, onSettle, deadline: 0, prev: undefined, next: undefined, list: undefined }
    if (timeoutMs > 0) this.deadlines.add(entry, timeoutMs)
    if (seq >= 0 && this.slots[seq & this.mask] === undefined) this.slots[seq & this.mask] = entry
    else this.overflow.set(id, entry)
    this.count++
  }

  /** [P-5.3] First outcome wins. Returns why the outcome was dropped, or null if it was delivered. */
  settle (id: string, outcome: Outcome, service?: string): DropReason | null {
    const entry = this.find(id)
    if (entry === undefined) {
      const reason = this.recentReason(id)
      this.dropped[reason]++
      return reason
    }
    // [P-3.5] a reply must come from the service the request was sent to.
    if (service !== undefined && service !== entry.service) {
      this.dropped['wrong-service']++
      return 'wrong-service'
    }
    this.finish(entry, DUPLICATE)
    this.settledCount++
    entry.onSettle(outcome, id)
    return null
  }

  /**
   * [P-5.7] The caller gave up (its HTTP connection closed): the waiter gets
   * RTW_CALLER_GONE at once and its slot is free; a reply that comes later is late.
   */
  cancel (id: string): boolean {
    const entry = this.find(id)
    if (entry === undefined || !this.finish(entry, LATE)) return false
    this.cancelledCount++
    entry.onSettle({ kind: 'error', code: 'RTW_CALLER_GONE' }, id)
    return true
  }

  /** Counts a reply that was dropped before it could be matched (retained, undecodable). */
  drop (reason: DropReason): void {
    this.dropped[reason]++
  }

  /** Settles every pending request with the same error, oldest first, e.g. on shutdown. */
  failAll (code: ErrorCode): void {
    const all = [...this.slots.filter((e): e is Pending => e !== undefined), ...this.overflow.values()]
    all.sort((a, b) => a.seq - b.seq)
    for (const entry of all) {
      if (this.finish(entry, LATE)) entry.onSettle({ kind: 'error', code }, entry.id)
    }
  }

  /** The sequence number of an id this correlator made, else -1. */
  private seqOf (id: string): number {
    if (id.length <= this.seqAt || !id.startsWith(this.prefix)) return -1
    const rest = id.slice(this.seqAt)
    const seq = parseInt(rest, 36)
    return seq >= 0 && seq < this.seq && seq.toString(36) === rest ? seq : -1
  }

  private find (id: string): Pending | undefined {
    // Comparing the whole id with the slot's is the check; seqOf's stricter
    // parse is needed only to classify ids that match nothing (recentReason).
    if (id.length > this.seqAt && id.startsWith(this.prefix)) {
      const seq = parseInt(id.slice(this.seqAt), 36)
      if (seq >= 0) {
        const entry = this.slots[seq & this.mask]
        if (entry !== undefined && entry.id === id) return entry
      }
    }
    return this.overflow.size === 0 ? undefined : this.overflow.get(id)
  }

  private recentReason (id: string): DropReason {
    const seq = this.seqOf(id)
    const size = this.recentSeq.length
    if (seq < 0 || size === 0 || this.recentSeq[seq % size] !== seq || this.recentTag[seq % size] !== tagOf(id, this.prefix.length)) return 'unknown'
    return this.recentKind[seq % size] === LATE ? 'late' : 'duplicate'
  }

  /** Removes a pending entry, remembering that later outcomes for it are `laterIs`; false if it was already gone. */
  private finish (entry: Pending, laterIs: typeof LATE | typeof DUPLICATE): boolean {
    const slot = entry.seq & this.mask
    if (entry.seq >= 0 && this.slots[slot] === entry) this.slots[slot] = undefined
    else if (this.overflow.get(entry.id) === entry) this.overflow.delete(entry.id)
    else return false
    this.count--
    this.deadlines.remove(entry)
    const size = this.recentSeq.length
    if (entry.seq >= 0 && size > 0) {
      this.recentSeq[entry.seq % size] = entry.seq
      this.recentTag[entry.seq % size] = tagOf(entry.id, this.prefix.length)
      this.recentKind[entry.seq % size] = laterIs
    }
    return true
  }
}
