// Queued services (docs/AMQP.md §2, §3), [P-10.1]: requests go to the durable
// queue rtw.req.<service> as persistent messages on the confirm channel, and
// replies come back on this gateway node's reply queue, correlated by the
// AMQP correlationId, which is the request id.
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib'
import type { Bridge, QueuedRequest, RequestQueue } from '../../core/bridge.js'
import type { AmqpConnection } from '../../net/amqp/connection.js'
import { TOPIC_HEADER, declareReplyQueue, declareRequestQueue, replyQueueName, requestQueueName } from '../../net/amqp/topology.js'
import { ackSafely, rejectSafely } from '../../net/amqp/acks.js'

export type ReplyRejection = 'no-correlation-id' | 'too-large' | 'malformed' | 'unknown'

export interface RequestQueueOptions {
  services: Iterable<string>
  nodeId: string
  /** Replies larger than this are refused: the caller gets 502 and the reply is dead-lettered. */
  maxReplyBytes: number
  /** How long the reply queue of a vanished gateway lingers. */
  replyQueueIdleMs: number
  /** A rejected reply, for a rate-limited log line. */
  onReject: (reason: ReplyRejection, detail: string) => void
  /** Offered a reply no waiting request claimed (one for an async request accepted before a restart); true: it was taken. */
  adopt?: (id: string, payload: Buffer) => Promise<boolean>
}

export class AmqpRequestQueue implements RequestQueue {
  readonly replyQueue: string
  private readonly services: ReadonlySet<string>
  /** Ids sent and not yet confirmed or refused, with who waits for that. */
  private readonly confirming = new Map<string, Array<(err: Error | null) => void> | null>()
  readonly counters = {
    confirmed: 0,
    unconfirmed: 0,
    replies: 0,
    lateReplies: 0,
    duplicateReplies: 0,
    rejectedReplies: { 'no-correlation-id': 0, 'too-large': 0, malformed: 0, unknown: 0 } as Record<ReplyRejection, number>
  }

  constructor (
    private readonly conn: AmqpConnection,
    private readonly bridge: Bridge,
    private readonly opts: RequestQueueOptions
  ) {
    this.services = new Set(opts.services)
    this.replyQueue = replyQueueName(opts.nodeId)
  }

  handles (service: string): boolean {
    return this.services.has(service)
  }

  get ready (): boolean {
    return this.conn.up
  }

  /** Calls back with null only once RabbitMQ confirmed the request: then, and only then, it is accepted. */
  send (r: QueuedRequest, cb: (err?: Error | null) => void): void {
    const options: Options.Publish = {
      persistent: true,
      // The worker deduplicates on messageId: the idempotency key when there is one [P-13.8], else the id.
      messageId: r.dedupeId ?? r.id,
      correlationId: r.id,
      contentType: 'application/json',
      headers: { [TOPIC_HEADER]: r.topic },
      timestamp: Math.floor(Date.now() / 1000)
    }
    if (r.expectsReply) options.replyTo = this.replyQueue
    // A request still queued when its caller gave up is dropped by RabbitMQ, not processed.
    if (r.expiresInMs > 0) options.expiration = String(r.expiresInMs)
    this.confirming.set(r.id, null)
    this.conn.publish('', requestQueueName(r.service), r.envelope, options, err => {
      if (err === null) this.counters.confirmed++
      else this.counters.unconfirmed++
      const waiters = this.confirming.get(r.id)
      this.confirming.delete(r.id)
      if (waiters != null) for (const w of waiters) w(err)
      cb(err)
    })
  }

  /**
   * Calls back when RabbitMQ confirms (null) or refuses the request sent with
   * this id. Returns false, and never calls back, when that already happened.
   */
  onConfirm (id: string, cb: (err: Error | null) => void): boolean {
    if (!this.confirming.has(id)) return false
    const waiters = this.confirming.get(id)
    if (waiters == null) this.confirming.set(id, [cb])
    else waiters.push(cb)
    return true
  }

  /** Runs on every (re)connect: redeclares the queues and resumes consuming replies. */
  async setup (ch: ConfirmChannel): Promise<void> {
    for (const service of this.services) await declareRequestQueue(ch, service)
    await declareReplyQueue(ch, this.opts.nodeId, this.opts.replyQueueIdleMs)
    await ch.prefetch(1000)
    await ch.consume(this.replyQueue, msg => this.onReply(ch, msg), { noAck: false })
  }

  private onReply (ch: ConfirmChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The server cancelled the consumer (queue deleted): start over, which redeclares it.
      ch.close().catch(() => {})
      return
    }
    const id = msg.properties.correlationId as unknown
    if (typeof id !== 'string' || id.length === 0) {
      this.reject(ch, msg, 'no-correlation-id', 'reply without a correlationId')
      return
    }
    if (msg.content.length > this.opts.maxReplyBytes) {
      this.bridge.correlator.settle(id, { kind: 'error', code: 'RTW_BAD_REPLY', message: `The reply is larger than ${this.opts.maxReplyBytes} bytes` })
      this.reject(ch, msg, 'too-large', `reply id=${id} of ${msg.content.length} bytes`)
      return
    }
    const result = this.bridge.settleFromQueue(id, msg.content)
    if (result === null) {
      this.counters.replies++
      ackSafely(ch, msg)
    } else if (result === 'bad-reply') {
      this.reject(ch, msg, 'malformed', `reply id=${id} could not be decoded; its caller got 502`)
    } else if (result === 'late' || result === 'duplicate') {
      // Normal under load and after redeliveries: the caller timed out, or a redelivered request was answered twice.
      if (result === 'late') this.counters.lateReplies++
      else this.counters.duplicateReplies++
      ackSafely(ch, msg)
    } else if (this.opts.adopt !== undefined) {
      this.opts.adopt(id, msg.content).then(
        taken => { if (taken) ackSafely(ch, msg); else this.reject(ch, msg, 'unknown', `reply id=${id}: no such request`) },
        () => this.reject(ch, msg, 'unknown', `reply id=${id}: no such request, and the result store could not be read`))
    } else {
      this.reject(ch, msg, 'unknown', `reply id=${id}: no such request`)
    }
  }

  private reject (ch: ConfirmChannel, msg: ConsumeMessage, reason: ReplyRejection, detail: string): void {
    this.counters.rejectedReplies[reason]++
    this.opts.onReject(reason, detail)
    // Not requeued: it goes to the dead-letter exchange, where it can be inspected.
    rejectSafely(ch, msg)
  }
}
