// Results of async requests to queued services (docs/AMQP.md §4): kept in the
// gateway's state store (memory, <dataDir>/gateway, or Redis for a cluster) for
// a retention time, readable at /requests/<handle>, and published once as a
// retained MQTT message on $result/<handle> so a browser can wait for it
// without polling. No I/O of its own: storing goes through a KvStore and
// publishing through a callback.
import { randomBytes } from 'node:crypto'
import type { Outcome } from '../../core/correlator.js'
import { decodeReply, encodeCallerReply, type Reply } from '../../core/envelope.js'
import { ERRORS, errorBody, type ErrorCode } from '../../core/errors.js'
import type { KvStore } from '../../net/store/store.js'

export const RESULT_TOPIC_PREFIX = '$result/'
export const RESULT_PATH_PREFIX = '/requests/'

export interface StoredResult {
  handle: string
  requestId: string
  service: string
  state: 'pending' | 'done'
  outcome: Outcome | undefined
}

export interface ResultStoreOptions {
  kv: KvStore
  /** How long a done result stays readable. */
  ttlMs: number
  /** Publishes on MQTT; an empty retained payload clears the retained message. */
  publish: (topic: string, payload: Buffer, retain: boolean) => void
  /** A write the store refused or failed: the result is then only on $result/<handle>. */
  onError?: (handle: string, err: Error) => void
  now?: () => number
}

/** The stored form: short keys, a Buffer body as base64. */
interface Record {
  id: string
  svc: string
  done: boolean
  /** While pending: when its caller's timeout passes (ms since the epoch). */
  dl?: number
  reply?: { status: number, headers: Reply['headers'], body: string, b64?: true }
  error?: { code: ErrorCode, message?: string }
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

/** The index entry from a request id to its handle, for a reply that reaches a restarted gateway. */
const BY_ID = 'req:'

function encode (requestId: string, service: string, outcome: Outcome | undefined, deadline?: number): string {
  const rec: Record = { id: requestId, svc: service, done: outcome !== undefined }
  if (deadline !== undefined) rec.dl = deadline
  if (outcome?.kind === 'reply') {
    const r = outcome.reply
    rec.reply = typeof r.body === 'string'
      ? { status: r.status, headers: r.headers, body: r.body }
      : { status: r.status, headers: r.headers, body: r.body.toString('base64'), b64: true }
  } else if (outcome?.kind === 'error') {
    rec.error = outcome.message === undefined ? { code: outcome.code } : { code: outcome.code, message: outcome.message }
  }
  return JSON.stringify(rec)
}

function decode (handle: string, raw: string, now: number): StoredResult {
  const rec = JSON.parse(raw) as Record
  // Pending past its deadline: the process that would have timed it out is gone (a crash), so say what it would have said.
  if (!rec.done && rec.dl !== undefined && rec.dl <= now) rec.error = { code: 'RTW_REPLY_TIMEOUT' }
  let outcome: Outcome | undefined
  if (rec.reply !== undefined) {
    const r = rec.reply
    outcome = { kind: 'reply', reply: { id: rec.id, status: r.status, headers: r.headers, body: r.b64 === true ? Buffer.from(r.body, 'base64') : r.body } }
  } else if (rec.error !== undefined) {
    outcome = { kind: 'error', ...rec.error }
  }
  return { handle, requestId: rec.id, service: rec.svc, state: outcome === undefined ? 'pending' : 'done', outcome }
}

export class ResultStore {
  readonly counters = { accepted: 0, completed: 0, adopted: 0, failedWrites: 0 }
  /** The last write of each handle: a finish never overtakes its begin on a backend that reorders. */
  private readonly writes = new Map<string, Promise<void>>()

  private readonly now: () => number

  constructor (private readonly opts: ResultStoreOptions) {
    this.now = opts.now ?? Date.now
    // A result that leaves the store leaves MQTT too; current subscribers see one empty message.
    opts.kv.onEvict = handle => { if (!handle.startsWith(BY_ID)) opts.publish(resultTopic(handle), Buffer.alloc(0), true) }
  }

  /** An unguessable handle: the status URL and MQTT topic are only known to whoever got the 202. */
  newHandle (): string {
    return randomBytes(16).toString('base64url')
  }

  get kv (): KvStore {
    return this.opts.kv
  }

  private queue (handle: string, write: () => Promise<unknown>): Promise<void> {
    const before = this.writes.get(handle) ?? Promise.resolve()
    const next = before.then(write).then(
      r => { if (r === 'full') throw new Error('the result store is full') },
    ).catch((err: Error) => {
      this.counters.failedWrites++
      this.opts.onError?.(handle, err)
    }).finally(() => { if (this.writes.get(handle) === next) this.writes.delete(handle) })
    this.writes.set(handle, next)
    return next
  }

  /** The request was accepted; until it finishes (or its timeoutMs passes), reads say "pending". */
  async begin (handle: string, requestId: string, service: string, timeoutMs: number, pendingTtlMs: number): Promise<void> {
    this.counters.accepted++
    const kv = this.opts.kv
    await this.queue(handle, async () => {
      // add, not put: a reply that came before the confirm has already stored the result.
      const added = await kv.add(handle, encode(requestId, service, undefined, this.now() + timeoutMs), pendingTtlMs)
      if (added === 'stored') await kv.put(BY_ID + requestId, handle, pendingTtlMs)
      return added
    })
  }

  /**
   * A reply that no waiting request claimed: when it answers a pending result
   * accepted before this process restarted on the same dataDir (and so the
   * same reply queue), it finishes that result. Returns false otherwise.
   */
  async adopt (requestId: string, payload: Buffer): Promise<boolean> {
    const handle = await this.opts.kv.get(BY_ID + requestId)
    if (handle === undefined) return false
    const entry = await this.get(handle)
    if (entry === undefined || entry.state !== 'pending') return false
    const decoded = decodeReply(payload)
    const outcome: Outcome = decoded.ok
      ? { kind: 'reply', reply: decoded.reply }
      : { kind: 'error', code: 'RTW_BAD_REPLY', message: `${ERRORS.RTW_BAD_REPLY.message}: ${decoded.reason}` }
    await this.finish(handle, requestId, entry.service, outcome)
    this.counters.adopted++
    return true
  }

  /** Stores the outcome (a reply, or the timeout/failure the caller would have got), then publishes it. */
  async finish (handle: string, requestId: string, service: string, outcome: Outcome): Promise<void> {
    this.counters.completed++
    await this.queue(handle, async () => await this.opts.kv.put(handle, encode(requestId, service, outcome), this.opts.ttlMs))
    // After the write, so a subscriber that gets the message can also GET it.
    this.opts.publish(resultTopic(handle), encodeCallerReply(requestId, outcomeReply(requestId, outcome)), true)
  }

  /** Throws when the store cannot be reached (Redis down). */
  async get (handle: string): Promise<StoredResult | undefined> {
    if (handle.startsWith(BY_ID)) return undefined
    const raw = await this.opts.kv.get(handle)
    return raw === undefined ? undefined : decode(handle, raw, this.now())
  }
}
