// One RabbitMQ connection that stays up: it reconnects with backoff and jitter,
// redeclares the topology and restarts consumers on every (re)connect, and
// makes "accepted" mean "confirmed" (docs/AMQP.md §2, §6). amqplib itself
// has no recovery that redeclares; this is the one place that handles it.
import { EventEmitter } from 'node:events'
import amqp, { type ChannelModel, type ConfirmChannel, type Options } from 'amqplib'
import type { Writable } from 'node:stream'
import { reconnectDelay } from '../../core/backoff.js'
import { batchWrites } from '../write-batch.js'

export type AmqpState = 'connecting' | 'up' | 'down' | 'closed'

export interface AmqpLog {
  info: (msg: string) => void
  warn: (msg: string) => void
}

export interface AmqpConnectionOptions {
  url: string
  /** Shown in RabbitMQ's management UI and logs. */
  name: string
  reconnectMinMs?: number
  reconnectMaxMs?: number
  /** Heartbeat in seconds when the URL names none; 0 turns it off. */
  heartbeatS?: number
  /**
   * Declares the topology and starts consumers on a fresh channel. Runs on
   * every (re)connect; the connection is "up" only once it has resolved.
   */
  setup: (ch: ConfirmChannel, generation: number) => Promise<void>
  log?: AmqpLog
}

const quiet: AmqpLog = { info: () => {}, warn: () => {} }

export type PublishCallback = (err: Error | null) => void

export class NotConnectedError extends Error {
  constructor (message = 'RabbitMQ is not connected') {
    super(message)
    this.name = 'NotConnectedError'
  }
}

/** Emits 'up' (generation) after each successful (re)connect and 'down' (err) when an up connection is lost. */
export class AmqpConnection extends EventEmitter {
  state: AmqpState = 'connecting'
  /** Increments on every successful connect; consumers use it to tell stale deliveries. */
  generation = 0
  connects = 0
  disconnects = 0
  lastError: string | undefined
  private model: ChannelModel | undefined
  private ch: ConfirmChannel | undefined
  private attempt = 0
  private timer: NodeJS.Timeout | undefined
  /** Publishes awaiting a confirm: failed all at once when the channel dies. */
  private readonly unconfirmed = new Set<PublishCallback>()
  private readonly log: AmqpLog
  private readonly url: string

  constructor (private readonly opts: AmqpConnectionOptions) {
    super()
    this.log = opts.log ?? quiet
    this.url = withHeartbeat(opts.url, opts.heartbeatS ?? 10)
  }

  /** A getter, so TypeScript does not narrow `state` across awaits. */
  private get closed (): boolean {
    return this.state === 'closed'
  }

  get up (): boolean {
    return this.state === 'up'
  }

  /**
   * The channel of the live connection, also while setup runs (consumers started
   * in setup may already publish and ack on it); undefined while down.
   */
  get channel (): ConfirmChannel | undefined {
    return this.ch
  }

  start (): void {
    void this.connect()
  }

  /** Resolves once the connection is up; rejects after timeoutMs or when closed. */
  async waitUntilUp (timeoutMs: number): Promise<void> {
    if (this.up) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.off('up', onUp); reject(new Error(`RabbitMQ not connected within ${timeoutMs} ms: ${this.lastError ?? 'no error yet'}`)) }, timeoutMs)
      const onUp = (): void => { clearTimeout(timer); resolve() }
      this.once('up', onUp)
    })
  }

  private async connect (): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'connecting'
    let model: ChannelModel | undefined
    try {
      // noDelay: amqplib leaves Nagle on, and publish + confirm + reply are small
      // back-to-back writes that stall ~40 ms on delayed ACKs (docs/ARCHITECTURE.md "Pitfalls" 2).
      model = await amqp.connect(this.url, { clientProperties: { connection_name: this.opts.name }, timeout: 5_000, noDelay: true })
      if (this.closed) { await model.close().catch(() => {}); return }
      // amqplib writes every frame with its own syscall; gather one turn's frames into one write.
      const stream = (model as unknown as { connection?: { stream?: Writable } }).connection?.stream
      if (stream !== undefined) batchWrites(stream)
      this.model = model
      const generation = this.generation + 1
      model.on('error', (err: Error) => { this.lastError = err.message })
      model.on('close', (err?: Error) => this.lost(model as ChannelModel, err ?? new Error('connection closed')))
      model.on('blocked', (reason: string) => this.log.warn(`RabbitMQ blocked the connection: ${reason}`))
      const ch = await model.createConfirmChannel()
      ch.on('error', (err: Error) => { this.lastError = err.message })
      // A channel error (e.g. PRECONDITION_FAILED) leaves the connection open but
      // this channel dead: start over on a new connection.
      ch.on('close', () => this.lost(model as ChannelModel, new Error(this.lastError ?? 'channel closed')))
      this.ch = ch
      await this.opts.setup(ch, generation)
      if (this.model !== model || this.closed) return
      this.generation = generation
      this.state = 'up'
      this.attempt = 0
      this.connects++
      this.lastError = undefined
      this.log.info(`RabbitMQ connected (${this.opts.name}, connection #${this.connects})`)
      this.emit('up', generation)
    } catch (err) {
      this.lastError = (err as Error).message
      if (model !== undefined) this.lost(model, err as Error)
      else this.scheduleReconnect()
    }
  }

  /** The connection or its channel died: fail what was unconfirmed, go down, reconnect. */
  private lost (model: ChannelModel, err: Error): void {
    if (this.model !== model) return
    this.model = undefined
    this.ch = undefined
    const wasUp = this.state === 'up'
    if (this.state !== 'closed') this.state = 'down'
    model.close().catch(() => {})
    this.failUnconfirmed(new NotConnectedError(`RabbitMQ connection lost before the confirm: ${err.message}`))
    if (wasUp) {
      this.disconnects++
      this.log.warn(`RabbitMQ connection lost: ${err.message}`)
      this.emit('down', err)
    }
    this.scheduleReconnect()
  }

  private scheduleReconnect (): void {
    if (this.state === 'closed' || this.timer !== undefined) return
    this.state = 'down'
    const delay = reconnectDelay(this.attempt++, this.opts.reconnectMinMs ?? 100, this.opts.reconnectMaxMs ?? 5_000)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.connect()
    }, delay)
    // Not unref'd: a worker whose only handle is this connection must stay alive to reconnect; close() clears it.
  }

  private failUnconfirmed (err: Error): void {
    const callbacks = [...this.unconfirmed]
    this.unconfirmed.clear()
    for (const cb of callbacks) cb(err)
  }

  /**
   * Publishes on the confirm channel. cb gets null only once RabbitMQ has
   * confirmed (for a persistent message to a durable queue: written to disk),
   * and an error when it nacked, the channel died first, or it is down now.
   * Exactly one call of cb, always.
   */
  publish (exchange: string, routingKey: string, content: Buffer, options: Options.Publish, cb: PublishCallback): void {
    const ch = this.channel
    if (ch === undefined) {
      cb(new NotConnectedError())
      return
    }
    let done = false
    const once: PublishCallback = err => {
      if (done) return
      done = true
      this.unconfirmed.delete(once)
      cb(err)
    }
    this.unconfirmed.add(once)
    try {
      ch.publish(exchange, routingKey, content, options, err => once(err === null || err === undefined ? null : new Error(`RabbitMQ refused the message: ${String(err)}`)))
    } catch (err) {
      once(err as Error)
    }
  }

  async close (): Promise<void> {
    this.state = 'closed'
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const model = this.model
    this.model = undefined
    this.ch = undefined
    this.failUnconfirmed(new NotConnectedError('RabbitMQ connection closed'))
    if (model !== undefined) await model.close().catch(() => {})
  }
}

/** Adds a heartbeat to the URL unless it names one, so a dead peer is noticed in seconds. */
function withHeartbeat (url: string, seconds: number): string {
  try {
    const u = new URL(url)
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(seconds))
    return u.toString()
  } catch {
    return url
  }
}
