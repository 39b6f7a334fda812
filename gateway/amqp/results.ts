// Results of async requests to queued services (docs/AMQP.md §4): kept in
// memory for a retention time, readable at /requests/<handle>, and published
// once as a retained MQTT message on $result/<handle> so a browser can wait
// for it without polling. No I/O of its own: publishing goes through a callback.
import { randomBytes } from 'node:crypto'
import type { Outcome } from '../../core/correlator.js'
import { encodeCallerReply, type Reply } from '../../core/envelope.js'
import { ERRORS, errorBody } from '../../core/errors.js'

export const RESULT_TOPIC_PREFIX = '$result/'
export const RESULT_PATH_PREFIX = '/requests/'

export interface StoredResult {
  handle: string
  requestId: string
  service: string
  state: 'pending' | 'done'
  outcome: Outcome | undefined
  /** When a done result stops being readable (ms since epoch). */
  expiresAt: number
  bytes: number
}

export interface ResultStoreOptions {
  ttlMs: number
  maxBytes: number
  /** Publishes on MQTT; an empty retained payload clears the retained message. */
  publish: (topic: string, payload: Buffer, retain: boolean) => void
  now?: () => number
}

export function resultTopic (handle: string): string {
  return RESULT_TOPIC_PREFIX + handle
}

/** An outcome as the reply envelope an MQTT-native caller gets [P-4.4]; errors as the gateway's error replies [P-6.2]. */
export function outcomeReply (requestId: string, outcome: Outcome): Reply {
  if (outcome.kind === 'reply') return outcome.reply
  return {
    id: requestId,
    status: ERRORS[outcome.code].status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(errorBody(outcome.code, outcome.message, requestId))
  }
}

export class ResultStore {
  private readonly entries = new Map<string, StoredResult>()
  /** Handles of done results, oldest first: retention and the memory bound both evict from the front. */
  private readonly doneOrder: string[] = []
  private doneHead = 0
  private bytes = 0
  private readonly timer: NodeJS.Timeout
  private readonly now: () => number
  readonly counters = { accepted: 0, completed: 0, expired: 0, evicted: 0 }

  constructor (private readonly opts: ResultStoreOptions) {
    this.now = opts.now ?? Date.now
    this.timer = setInterval(() => this.sweep(), Math.max(50, Math.min(opts.ttlMs / 2, 1_000)))
    this.timer.unref()
  }

  /** An unguessable handle: the status URL and MQTT topic are only known to whoever got the 202. */
  newHandle (): string {
    return randomBytes(16).toString('base64url')
  }

  get size (): number {
    return this.entries.size
  }

  get storedBytes (): number {
    return this.bytes
  }

  /** The request was accepted; until it finishes, reads say "pending". */
  begin (handle: string, requestId: string, service: string): void {
    if (this.entries.has(handle)) return
    this.counters.accepted++
    this.entries.set(handle, { handle, requestId, service, state: 'pending', outcome: undefined, expiresAt: Infinity, bytes: 0 })
  }

  /** Stores the outcome (a reply, or the timeout/failure the caller would have got) and publishes it. */
  finish (handle: string, requestId: string, service: string, outcome: Outcome): void {
    let entry = this.entries.get(handle)
    if (entry === undefined) {
      entry = { handle, requestId, service, state: 'pending', outcome: undefined, expiresAt: Infinity, bytes: 0 }
      this.entries.set(handle, entry)
    }
    if (entry.state === 'done') return
    const payload = encodeCallerReply(requestId, outcomeReply(requestId, outcome))
    entry.state = 'done'
    entry.outcome = outcome
    entry.expiresAt = this.now() + this.opts.ttlMs
    entry.bytes = payload.length + 256
    this.bytes += entry.bytes
    this.doneOrder.push(handle)
    this.counters.completed++
    this.opts.publish(resultTopic(handle), payload, true)
    while (this.bytes > this.opts.maxBytes && this.evictOldest('evicted')) { /* until under the bound */ }
  }

  get (handle: string): StoredResult | undefined {
    const entry = this.entries.get(handle)
    if (entry === undefined || entry.expiresAt <= this.now()) return undefined
    return entry
  }

  sweep (): void {
    const now = this.now()
    while (this.doneHead < this.doneOrder.length) {
      const entry = this.entries.get(this.doneOrder[this.doneHead] as string)
      if (entry !== undefined && entry.expiresAt > now) break
      this.evictOldest('expired')
    }
  }

  private evictOldest (why: 'expired' | 'evicted'): boolean {
    if (this.doneHead >= this.doneOrder.length) return false
    const handle = this.doneOrder[this.doneHead++] as string
    if (this.doneHead > 1024 && this.doneHead * 2 > this.doneOrder.length) {
      this.doneOrder.splice(0, this.doneHead)
      this.doneHead = 0
    }
    const entry = this.entries.get(handle)
    if (entry === undefined) return true
    this.entries.delete(handle)
    this.bytes -= entry.bytes
    this.counters[why]++
    // Clears the retained message; current subscribers see one empty message.
    this.opts.publish(resultTopic(handle), Buffer.alloc(0), true)
    return true
  }

  close (): void {
    clearInterval(this.timer)
  }
}
