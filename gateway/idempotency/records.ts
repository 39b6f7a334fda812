// Idempotency records (PROTOCOL.md §13): what a REST call with an
// Idempotency-Key left behind, kept in the gateway's state store so that every
// node and every restart sees it. Parsing, scoping and fingerprinting are pure;
// the class only reads and writes the store.
import { createHash } from 'node:crypto'
import type { Call } from '../../core/bridge.js'
import type { Reply } from '../../core/envelope.js'
import { GatewayError } from '../../core/errors.js'
import type { KvStore } from '../../net/store/store.js'

/** [P-13.1] 1-255 visible ASCII characters; a structured-field string ("…") is taken without its quotes. */
export function parseIdempotencyKey (raw: string | string[]): string {
  if (typeof raw !== 'string') throw new GatewayError('RTW_BAD_IDEMPOTENCY_KEY', 'Only one Idempotency-Key header may be sent')
  const key = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw new GatewayError('RTW_BAD_IDEMPOTENCY_KEY')
  return key
}

const digest = (parts: Array<string | Buffer>): string => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\0')
  return h.digest('base64url')
}

/** [P-13.2] Keys are per caller: the same key from two callers names two records. */
export function scopedKey (owner: string, key: string): string {
  return digest([owner, key])
}

/** [P-13.4] What must match for a repeat: method, service, path, query (without the gateway's timeout) and body. */
export function fingerprint (call: Pick<Call, 'method' | 'service' | 'path' | 'query' | 'body'>): string {
  return digest([call.method, call.service, call.path, call.query, call.body ?? ''])
}

export type IdempotencyRecord =
  | { fp: string, done: false }
  | { fp: string, done: true, id: string, reply: Reply }

interface Stored { fp: string, done: boolean, id?: string, status?: number, headers?: Reply['headers'], body?: string, b64?: true }

export function encodeRecord (rec: IdempotencyRecord): string {
  if (!rec.done) return JSON.stringify({ fp: rec.fp, done: false })
  const r = rec.reply
  const body = typeof r.body === 'string' ? { body: r.body } : { body: r.body.toString('base64'), b64: true }
  return JSON.stringify({ fp: rec.fp, done: true, id: rec.id, status: r.status, headers: r.headers, ...body })
}

export function decodeRecord (raw: string): IdempotencyRecord {
  const s = JSON.parse(raw) as Stored
  if (!s.done) return { fp: s.fp, done: false }
  const body = s.b64 === true ? Buffer.from(s.body ?? '', 'base64') : s.body ?? ''
  return { fp: s.fp, done: true, id: s.id ?? '', reply: { id: s.id, status: s.status ?? 500, headers: s.headers ?? {}, body } }
}

export class IdempotencyRecords {
  /** Calls this node is running now, by scoped key: a repeat here waits for the first [P-13.6]. */
  readonly running = new Map<string, Promise<void>>()
  readonly counters = { executed: 0, replayed: 0, waited: 0, conflicts: 0, mismatches: 0, released: 0, refused: 0 }

  constructor (readonly kv: KvStore, readonly ttlMs: number) {}

  /** Claims the key for a run: true when this call may execute, else the record that holds it (undefined if it just left). */
  async claim (key: string, fp: string, runningTtlMs: number): Promise<true | 'full' | IdempotencyRecord | undefined> {
    const added = await this.kv.add(key, encodeRecord({ fp, done: false }), runningTtlMs)
    if (added === 'stored') return true
    if (added === 'full') return 'full'
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw)
  }

  async complete (key: string, fp: string, id: string, reply: Reply): Promise<void> {
    await this.kv.put(key, encodeRecord({ fp, done: true, id, reply }), this.ttlMs)
  }

  /** The call was never executed (refused before dispatch): the key is free again. */
  async release (key: string): Promise<void> {
    this.counters.released++
    await this.kv.delete(key)
  }
}
