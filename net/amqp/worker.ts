// A worker for queued services (docs/AMQP.md §3): consumes rtw.req.<service>
// with a prefetch limit and manual acks, hands each request envelope (the same
// JSON an MQTT responder gets [P-2.1]) to a handler, and publishes the reply to
// the message's replyTo with its correlationId. The request is acked only once
// the reply is confirmed, so a crash at any point leads to redelivery, never to
// a lost request. Redeliveries of a request this worker already handled are
// answered from a cache of recent replies instead of being processed again:
// in memory, and in a KvStore when one is given (docs/AMQP.md §3.1), so that a
// worker restart does not forget what it already did.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib'
import type { RequestEnvelope } from '../../core/envelope.js'
import { AmqpConnection, type AmqpLog } from './connection.js'
import { TOPIC_HEADER, declareDeadLetter, declareRequestQueue } from './topology.js'
import { ackSafely, rejectSafely } from './acks.js'
import type { KvStore } from '../store/store.js'

/** The reply payload to send, or null when there is nothing to send. */
export type RequestHandler = (request: RequestEnvelope, raw: Buffer, topic: string) => Promise<Buffer | null> | Buffer | null

export type WorkerEvent =
  | { kind: 'received', id: string, service: string, redelivered: boolean }
  | { kind: 'processed', id: string, service: string, redelivered: boolean }
  | { kind: 'duplicate', id: string, service: string }
  | { kind: 'expired', id: string, service: string }
  | { kind: 'malformed', service: string, reason: string }
  | { kind: 'failed', id: string, service: string, error: string }

export interface WorkerOptions {
  url: string
  services: string[]
  /** Unacked requests this worker holds at once (per service). */
  prefetch: number
  handle: RequestHandler
  name?: string
  reconnectMaxMs?: number
  /** Recent request ids remembered in memory for deduplication (default 10,000). */
  dedupeSize?: number
  /**
   * Where replies are remembered across restarts, by dedupe id (the message's
   * messageId: the caller's idempotency key [P-13.8], else the request id).
   * Written before the reply is published, so a redelivery after a crash is
   * answered from it. Without it, only the in-memory cache dedupes.
   */
  dedupeStore?: KvStore
  log?: AmqpLog
  onEvent?: (event: WorkerEvent) => void
}

function parseEnvelope (content: Buffer): RequestEnvelope | string {
  let parsed: unknown
  try {
    parsed = JSON.parse(content.toString('utf8'))
  } catch {
    return 'not JSON'
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a JSON object'
  const env = parsed as Partial<RequestEnvelope>
  if (typeof env.id !== 'string' || env.id.length === 0) return 'no id'
  if (typeof env.replyTo !== 'string') return 'no replyTo'
  if (typeof env.method !== 'string') return 'no method'
  return env as RequestEnvelope
}

type Outcome = { kind: 'processed' | 'stored', reply: Buffer | null } | { kind: 'expired' }

export class AmqpWorker {
  readonly conn: AmqpConnection
  /** Request id -> its reply (a promise while the handler runs). */
  private readonly seen = new Map<string, Promise<Buffer | null>>()
  private readonly dedupeSize: number
  readonly counters = { processed: 0, duplicates: 0, expired: 0, malformed: 0, failed: 0, storeFailures: 0 }

  constructor (private readonly opts: WorkerOptions) {
    this.dedupeSize = opts.dedupeSize ?? 10_000
    this.conn = new AmqpConnection({
      url: opts.url,
      name: opts.name ?? `rtw-worker ${opts.services.join(',')} pid ${process.pid}`,
      reconnectMaxMs: opts.reconnectMaxMs,
      log: opts.log,
      setup: async ch => {
        await declareDeadLetter(ch)
        await ch.prefetch(opts.prefetch)
        for (const service of opts.services) {
          const queue = await declareRequestQueue(ch, service)
          await ch.consume(queue, msg => { void this.onMessage(ch, service, msg) }, { noAck: false })
        }
      }
    })
  }

  start (): void {
    this.conn.start()
  }

  async close (): Promise<void> {
    await this.conn.close()
  }

  private emit (event: WorkerEvent): void {
    this.opts.onEvent?.(event)
  }

  private async onMessage (ch: ConfirmChannel, service: string, msg: ConsumeMessage | null): Promise<void> {
    if (msg === null) {
      ch.close().catch(() => {})
      return
    }
    const env = parseEnvelope(msg.content)
    if (typeof env === 'string') {
      this.counters.malformed++
      this.emit({ kind: 'malformed', service, reason: env })
      this.opts.log?.warn(`worker: malformed request on ${service} dead-lettered: ${env}`)
      rejectSafely(ch, msg)
      return
    }
    const id = env.id
    const messageId = msg.properties.messageId as unknown
    const dedupeId = typeof messageId === 'string' && messageId.length > 0 ? messageId : id
    const known = this.seen.get(dedupeId)
    if (known !== undefined) {
      await this.answerDuplicate(ch, msg, id, service, known)
      return
    }
    const topic = msg.properties.headers?.[TOPIC_HEADER]
    const run = async (): Promise<Outcome> => {
      // Remembered across a restart: answered from the store, not processed again.
      const stored = await this.lookup(dedupeId)
      if (stored !== undefined) return { kind: 'stored', reply: stored }
      // The caller has given up; RabbitMQ drops expired messages only at the queue head.
      if (env.deadline > 0 && Date.now() > env.deadline) return { kind: 'expired' }
      this.emit({ kind: 'received', id, service, redelivered: msg.fields.redelivered })
      const reply = await this.opts.handle(env, msg.content, typeof topic === 'string' ? topic : `$req/${service}${env.path}`)
      await this.store(dedupeId, reply)
      return { kind: 'processed', reply }
    }
    const outcome = run()
    // In memory at once, so a second delivery meanwhile waits for this one.
    this.remember(dedupeId, outcome.then(o => { if (o.kind === 'expired') throw new Error('expired'); return o.reply }))
    let done: Outcome
    try {
      done = await outcome
    } catch (err) {
      this.seen.delete(dedupeId)
      this.counters.failed++
      this.emit({ kind: 'failed', id, service, error: (err as Error).message })
      this.opts.log?.warn(`worker: handler failed for ${id}: ${(err as Error).message}; dead-lettered`)
      rejectSafely(ch, msg)
      return
    }
    if (done.kind === 'expired') {
      this.seen.delete(dedupeId)
      this.counters.expired++
      this.emit({ kind: 'expired', id, service })
      rejectSafely(ch, msg)
      return
    }
    if (done.kind === 'stored') {
      await this.answerDuplicate(ch, msg, id, service, Promise.resolve(done.reply))
      return
    }
    this.counters.processed++
    this.emit({ kind: 'processed', id, service, redelivered: msg.fields.redelivered })
    this.reply(ch, msg, id, done.reply)
  }

  /** A redelivery (RabbitMQ restart, lost ack, a retried idempotent call): answered again, not processed again. */
  private async answerDuplicate (ch: ConfirmChannel, msg: ConsumeMessage, id: string, service: string, known: Promise<Buffer | null>): Promise<void> {
    this.counters.duplicates++
    this.emit({ kind: 'duplicate', id, service })
    let reply: Buffer | null
    try {
      reply = await known
    } catch {
      rejectSafely(ch, msg)
      return
    }
    this.reply(ch, msg, id, reply)
  }

  /** The stored reply ("-" for none), or undefined when not stored or the store is away (then the request is processed). */
  private async lookup (dedupeId: string): Promise<Buffer | null | undefined> {
    try {
      const raw = await this.opts.dedupeStore?.get(dedupeId)
      if (raw === undefined) return undefined
      return raw === '-' ? null : Buffer.from(raw, 'base64')
    } catch (err) {
      this.counters.storeFailures++
      this.opts.log?.warn(`worker: dedupe store unreadable for ${dedupeId}: ${(err as Error).message}`)
      return undefined
    }
  }

  private async store (dedupeId: string, reply: Buffer | null): Promise<void> {
    const store = this.opts.dedupeStore
    if (store === undefined) return
    try {
      await store.put(dedupeId, reply === null ? '-' : reply.toString('base64'))
    } catch (err) {
      // Still answered: only a crash before the ack could now make it run twice.
      this.counters.storeFailures++
      this.opts.log?.warn(`worker: dedupe store write failed for ${dedupeId}: ${(err as Error).message}`)
    }
  }

  private remember (id: string, work: Promise<Buffer | null>): void {
    this.seen.set(id, work)
    work.catch(() => {})
    if (this.seen.size > this.dedupeSize) {
      const oldest = this.seen.keys().next().value
      if (oldest !== undefined) this.seen.delete(oldest)
    }
  }

  /** Publishes the reply, and acks the request only once the reply is confirmed. */
  private reply (ch: ConfirmChannel, msg: ConsumeMessage, id: string, payload: Buffer | null): void {
    const replyTo = msg.properties.replyTo as unknown
    if (payload === null || typeof replyTo !== 'string' || replyTo.length === 0) {
      ackSafely(ch, msg)
      return
    }
    const correlationId = typeof msg.properties.correlationId === 'string' ? msg.properties.correlationId : id
    this.conn.publish('', replyTo, payload, { correlationId, persistent: true, contentType: 'application/json' }, err => {
      // Unconfirmed: leave the request unacked. It is redelivered once the
      // channel is back, and answered from the cache.
      if (err === null && this.conn.channel === ch) ackSafely(ch, msg)
    })
  }
}
