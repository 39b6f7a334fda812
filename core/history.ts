// The bounded message history (PROTOCOL.md §14): the last messages of each
// topic, for recovery after a reconnect. One interface, two stores: this
// in-memory one and Redis Streams (gateway/history/redis.ts). Pure: no I/O.
import { topicMatches } from './topics.js'

/**
 * [P-14.2] Where a message sits in the history: the history's epoch (new each
 * time the history is lost) and an offset, increasing with every message
 * recorded, so increasing within each topic too.
 */
export interface Position {
  readonly epoch: string
  readonly offset: number
}

export interface HistoryEntry {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  readonly offset: number
}

export interface Recovery {
  /** [P-14.4] True when every message after the position that the filters match is in `entries`. */
  readonly recovered: boolean
  /** The messages after the position, oldest first; empty when not recovered. */
  readonly entries: readonly HistoryEntry[]
  /** The history's position now: where the caller stands once it has read `entries`. */
  readonly head: Position
}

export interface HistoryLimits {
  /** Messages kept per topic (historySize). */
  readonly size: number
  /** How long a message is kept (historyTtlMs). */
  readonly ttlMs: number
  /** Payload and topic bytes kept in all (historyMaxBytes). */
  readonly maxBytes: number
}

/** One store of the history; the gateway records into it once per message, on the node it was published on. */
export interface History {
  /** Records a message and returns its position. */
  append: (topic: string, payload: Buffer, qos: 0 | 1 | 2) => Promise<Position>
  /** [P-14.4] What the filters missed after `since`, all of it or nothing. */
  recover: (filters: readonly string[], since: Position) => Promise<Recovery>
  /** The position of the last message recorded (offset 0 before the first). */
  head: () => Promise<Position>
  close: () => Promise<void>
}

/** [P-14.3] The text form of a position, as SSE `id:` and as `since=`: `<epoch>-<offset>`. */
export function formatPosition (p: Position): string {
  return `${p.epoch}-${p.offset}`
}

/** A position from its text form; null when it is not one. */
export function parsePosition (text: string | undefined): Position | null {
  if (text === undefined) return null
  const m = /^([0-9a-z]{1,32})-(\d{1,15})$/.exec(text.trim())
  if (m === null) return null
  return { epoch: m[1] as string, offset: Number(m[2]) }
}

/** A fresh epoch: random, so that a position from a lost history never matches a new one. */
export function newEpoch (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  return Array.from(bytes, b => b.toString(36).padStart(2, '0')).join('').slice(0, 12)
}

/** [P-14.1] Whether `historyTopics` keeps a topic; `$history/…` copies are never kept again. */
export function isRecorded (filters: readonly string[], topic: string): boolean {
  if (topic.startsWith('$history/')) return false
  for (const f of filters) if (topicMatches(f, topic)) return true
  return false
}

interface Kept extends HistoryEntry {
  readonly at: number
  readonly bytes: number
  /** Neighbours in the history's offset order, across topics. */
  older: Kept | null
  newer: Kept | null
}

interface TopicLog {
  entries: Kept[]
  /** Index of the first live entry in `entries` (entries before it were evicted). */
  start: number
  /** The largest offset evicted from this topic; recovery from before it is incomplete. */
  dropped: number
}

// Per-entry overhead counted against maxBytes besides topic and payload.
const ENTRY_OVERHEAD = 64
// Topics whose eviction marks are remembered once they hold no messages; past it the oldest fold into `forgotten`.
const MAX_EMPTY_TOPICS = 100_000

/** The in-memory history: lost on restart, when its epoch changes with it. */
export class MemoryHistory implements History {
  readonly epoch: string
  private offset = 0
  private bytes = 0
  private readonly topics = new Map<string, TopicLog>()
  /** Every kept entry in offset order, oldest first, for eviction by age and size. */
  private oldest: Kept | null = null
  private newest: Kept | null = null
  private count = 0
  /** Topics that hold nothing but an eviction mark, oldest first. */
  private readonly empty = new Set<string>()
  /** The largest offset evicted from a topic whose mark was forgotten: recovery from before it fails for every filter. */
  private forgotten = 0

  constructor (private readonly limits: HistoryLimits, private readonly now: () => number = Date.now, epoch = newEpoch()) {
    this.epoch = epoch
  }

  get stats (): { topics: number, messages: number, bytes: number } {
    return { topics: this.topics.size - this.empty.size, messages: this.count, bytes: this.bytes }
  }

  async append (topic: string, payload: Buffer, qos: 0 | 1 | 2): Promise<Position> {
    return this.appendNow(topic, payload, qos)
  }

  /** append without the promise, for callers that want the position in the same turn. */
  appendNow (topic: string, payload: Buffer, qos: 0 | 1 | 2): Position {
    const offset = ++this.offset
    const now = this.now()
    let log = this.topics.get(topic)
    if (log === undefined) {
      log = { entries: [], start: 0, dropped: 0 }
      this.topics.set(topic, log)
    }
    this.empty.delete(topic)
    const entry: Kept = { topic, payload, qos, offset, at: now, bytes: payload.length + Buffer.byteLength(topic) + ENTRY_OVERHEAD, older: this.newest, newer: null }
    log.entries.push(entry)
    if (this.newest === null) this.oldest = entry
    else this.newest.newer = entry
    this.newest = entry
    this.count++
    this.bytes += entry.bytes
    while (log.entries.length - log.start > this.limits.size) this.evictFirst(topic, log)
    this.trim(now)
    return { epoch: this.epoch, offset }
  }

  async recover (filters: readonly string[], since: Position): Promise<Recovery> {
    this.trim(this.now())
    const head = { epoch: this.epoch, offset: this.offset }
    const none = { recovered: false, entries: [], head }
    // [P-14.4] another epoch, a position from the future, or one before a forgotten eviction.
    if (since.epoch !== this.epoch || since.offset > this.offset || since.offset < this.forgotten) return none
    const found: Kept[][] = []
    for (const [topic, log] of this.topics) {
      if (!filters.some(f => topicMatches(f, topic))) continue
      if (log.dropped > since.offset) return none
      const after = log.entries.slice(log.start).filter(e => e.offset > since.offset)
      if (after.length > 0) found.push(after)
    }
    const entries = found.flat().sort((a, b) => a.offset - b.offset)
    return { recovered: true, entries, head }
  }

  async head (): Promise<Position> {
    return { epoch: this.epoch, offset: this.offset }
  }

  async close (): Promise<void> {
    this.topics.clear()
    this.oldest = this.newest = null
    this.count = 0
    this.bytes = 0
  }

  /** Evicts by age and by total size, oldest first. */
  private trim (now: number): void {
    const cutoff = now - this.limits.ttlMs
    // The oldest entry of all is always the first of its topic.
    for (let e = this.oldest; e !== null && (e.at <= cutoff || this.bytes > this.limits.maxBytes); e = this.oldest) {
      this.evictFirst(e.topic, this.topics.get(e.topic) as TopicLog)
    }
  }

  private evictFirst (topic: string, log: TopicLog): void {
    const entry = log.entries[log.start] as Kept
    log.entries[log.start] = undefined as unknown as Kept // let the payload go now
    log.start++
    log.dropped = entry.offset
    this.bytes -= entry.bytes
    this.count--
    if (entry.older === null) this.oldest = entry.newer
    else entry.older.newer = entry.newer
    if (entry.newer === null) this.newest = entry.older
    else entry.newer.older = entry.older
    entry.older = entry.newer = null
    if (log.start > 64 && log.start * 2 > log.entries.length) {
      log.entries.splice(0, log.start)
      log.start = 0
    }
    if (log.start === log.entries.length) {
      log.entries = []
      log.start = 0
      this.empty.add(topic)
      if (this.empty.size > MAX_EMPTY_TOPICS) {
        const first = this.empty.values().next().value as string
        this.empty.delete(first)
        const gone = this.topics.get(first)
        if (gone !== undefined) this.forgotten = Math.max(this.forgotten, gone.dropped)
        this.topics.delete(first)
      }
    }
  }
}
