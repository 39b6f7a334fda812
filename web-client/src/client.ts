// The client: one MQTT-over-WebSocket connection carrying requests, live
// subscriptions and publishes, kept alive across drops. The policies it
// implements are documented in web-client/README.md.
import { backoffDelay } from './backoff.js'
import { toBytes, type BodyInit } from './body.js'
import { encodePublish, encodeSubscribe, encodeUnsubscribe, SUBACK, type QoS } from './codec.js'
import { Connection, type WebSocketConstructor } from './connection.js'
import { Emitter } from './emitter.js'
import { clientError, type GatewayError } from './errors.js'
import { Requests, type RequestOptions, type Response } from './requests.js'
import { restRequest } from './rest.js'
import { schedule, type Cancel } from './timers.js'
import { refreshDelay, tokenExpiry } from './token.js'
import { isValidTopicFilter, isValidTopicName, topicMatches } from './topics.js'
import { fetchMissed, HISTORY_PREFIX, isAfter, parseCopy } from './positions.js'
import type { EventSourceConstructor } from './sse-transport.js'
import { Fallback, fallbackEventSource } from './fallback.js'

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed'

export interface ConnectOptions {
  /** `ws(s)://host/mqtt`. In a browser it defaults to `/mqtt` on the page's origin; relative URLs resolve against it. */
  url?: string
  /**
   * Several nodes of a cluster (docs/CLUSTER.md), instead of `url`: the first
   * is tried first, and each reconnect after a drop goes to the next one, so a
   * node that dies is left for a live one. REST goes to the node in use.
   */
  urls?: string[]
  /** Base URL of the REST route (`<base>/api/…`). Defaults to the origin of the WebSocket URL in use, with http(s) for ws(s). */
  restUrl?: string
  /** A fixed token, sent as the MQTT password and as `Authorization: Bearer` on REST. */
  token?: string
  /** Called for a token before each connection and before the current one expires (JWT `exp`). */
  getToken?: () => string | Promise<string>
  /** MQTT user name sent with a token (the gateway ignores it; default "jwt"). */
  username?: string
  /** MQTT client id (no "/", "+" or "#"); default a random `rtw-…`. */
  clientId?: string
  /** WebSocket constructor; required in Node 20 (e.g. `import { WebSocket } from 'ws'`). */
  WebSocket?: WebSocketConstructor
  /** fetch for the REST route; defaults to the global one. */
  fetch?: typeof fetch
  /** Seconds between PINGREQs (default 25; 0 turns keepalive off). */
  keepalive?: number
  /** ms to wait for a PINGRESP before declaring the connection dead (default 10000). */
  pingTimeout?: number
  /** ms for the WebSocket to open and CONNACK to arrive (default 10000). */
  connectTimeout?: number
  /** Default request timeout in ms (default 10000; the gateway allows at most 60000 by default). */
  requestTimeout?: number
  /** Reconnect backoff floor and ceiling in ms (defaults 500 and 20000). */
  minReconnectDelay?: number
  maxReconnectDelay?: number
  /** Refresh a JWT at most this many ms before it expires (default 60000; a quarter of its life when shorter). */
  refreshMargin?: number
  /** Requests and publishes that may wait for a connection at once (default 1000). */
  maxQueued?: number
  /** Run timers in a Web Worker so background tabs keep their keepalive (default true; ignored where Worker is missing). */
  workerTimers?: boolean
  /**
   * When the first WebSocket cannot be opened (a proxy refuses the upgrade, it errors or times out),
   * go on over EventSource (GET /events) and fetch instead, with the same API (default true where EventSource exists).
   */
  fallback?: boolean
  /** EventSource constructor for the fallback; defaults to the global one. */
  EventSource?: EventSourceConstructor
}

/** What carries subscriptions and publishes: one MQTT-over-WebSocket connection, or the fallback. */
export type Transport = 'websocket' | 'sse'

export interface Message {
  topic: string
  /** Raw bytes. */
  payload: Uint8Array
  /** The payload as UTF-8 text. */
  text: string
  retain: boolean
  /** Its position in the gateway's history, on subscriptions made with `recover: true` (and on the fallback transport). */
  position?: string
}

export type MessageHandler = (message: Message) => void

/** Calling it unsubscribes. `ready` resolves once the gateway has acknowledged the subscription. */
export interface Subscription {
  (): void
  readonly ready: Promise<void>
}

export interface SubscribeOptions {
  qos?: QoS
  /**
   * Keep the position of the last message seen and, after a reconnect, get
   * what was missed first, in order, with no gap and no duplicate. Each
   * recovery is reported with the `recovered` event (README "Recovery").
   */
  recover?: boolean
}

export interface RecoveredInfo {
  filter: string
  /** True when every missed message was delivered; false when some were no longer in the gateway's history. */
  recovered: boolean
}

export interface PublishOptions {
  qos?: QoS
  retain?: boolean
}

export interface DisconnectInfo {
  reason: string
  /** True when a reconnect is scheduled; false once the client is closed. */
  willReconnect: boolean
  /** Delay before the next attempt, in ms. */
  delayMs: number
  /** Consecutive failed attempts so far. */
  attempt: number
}

export interface ClientEvents {
  state: [state: ConnectionState]
  connected: [info: { clientId: string, reconnected: boolean }]
  disconnected: [info: DisconnectInfo]
  error: [error: GatewayError]
  recovered: [info: RecoveredInfo]
  transport: [transport: Transport]
}

interface Sub {
  qos: QoS
  handlers: Set<MessageHandler>
  active: boolean
  waiters: Array<[() => void, (e: Error) => void]>
  recover: boolean
  /** The last position delivered (recover only). */
  position?: string
  /** Copies held while the missed messages are fetched (recover only). */
  held: Message[] | null
  /** The retained values of a new subscription are still to come (fallback transport). */
  wantsRetained: boolean
}

/** What the broker is asked for: a recovering subscription reads the positioned copies [P-16.1]. */
const wire = (filter: string, sub: Sub): string => sub.recover ? HISTORY_PREFIX + filter : filter

interface Outgoing {
  topic: string
  payload: Uint8Array
  qos: QoS
  retain: boolean
  resolve: () => void
  reject: (e: Error) => void
}

function randomId (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  return 'rtw-' + Array.from(bytes, b => b.toString(36).padStart(2, '0')).join('')
}

function defaultUrl (url: string | undefined): string {
  const loc = (globalThis as { location?: { href: string, protocol: string } }).location
  if (loc === undefined) {
    if (url === undefined) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', 'url is required outside a browser')
    return url
  }
  const u = new URL(url ?? '/mqtt', loc.href)
  if (u.protocol === 'http:' || u.protocol === 'https:') u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:'
  return u.href
}

export class RealtimeClient extends Emitter<ClientEvents> {
  readonly clientId: string
  state: ConnectionState = 'connecting'
  private readonly urls: string[]
  private urlAt = 0
  private readonly WebSocket: WebSocketConstructor
  private readonly opts: ConnectOptions
  private conn: Connection | null = null
  private token: string | undefined
  private fetching: Promise<string> | undefined
  private attempt = 0
  private everConnected = false
  private cancelRetry: Cancel = () => {}
  private cancelRefresh: Cancel = () => {}
  private holding = false
  private refreshWait: (() => void) | null = null
  private readonly subs = new Map<string, Sub>()
  private outbox: Outgoing[] = []
  private readonly requests: Requests
  private readonly detach: () => void
  /** What carries subscriptions and publishes now; 'sse' once the fallback took over. */
  transport: Transport = 'websocket'
  private sse: Fallback<Sub> | null = null

  constructor (opts: ConnectOptions = {}) {
    super()
    this.opts = opts
    if (opts.urls !== undefined && opts.urls.length === 0) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', 'urls is empty')
    this.urls = (opts.urls ?? [opts.url]).map(u => defaultUrl(u))
    // A URL that cannot be parsed fails here, not on some later reconnect.
    for (const u of this.urls) if (!URL.canParse(u)) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', `not a URL: ${u}`)
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WS === undefined) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', 'no WebSocket: pass the WebSocket option (e.g. from the "ws" package)')
    this.WebSocket = WS
    this.clientId = opts.clientId ?? randomId()
    if (!/^[^/+#]+$/.test(this.clientId)) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', 'clientId may not contain "/", "+" or "#"')
    this.token = opts.token
    this.requests = new Requests(this.clientId, (topic, payload) => this.send(encodePublish(topic, payload, 0, false, 0)),
      () => this.live, () => this.onRequestSettled(), opts.workerTimers !== false)
    // Come back at once when the network or the tab does, instead of waiting out the backoff.
    const wake = (): void => {
      if (this.state === 'disconnected' && (typeof document === 'undefined' || document.visibilityState !== 'hidden')) this.reconnectNow()
    }
    const target = globalThis as { addEventListener?: (e: string, f: () => void) => void, removeEventListener?: (e: string, f: () => void) => void }
    target.addEventListener?.('online', wake)
    target.addEventListener?.('visibilitychange', wake)
    this.detach = () => {
      target.removeEventListener?.('online', wake)
      target.removeEventListener?.('visibilitychange', wake)
    }
  }

  /** The WebSocket URL in use (or tried next). */
  private get url (): string {
    return this.urls[this.urlAt] as string
  }

  /** Where REST calls go: restUrl, or the origin of the node in use. */
  private get restBase (): string {
    const u = new URL(this.url)
    return (this.opts.restUrl ?? `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`).replace(/\/$/, '')
  }

  /** True when requests and publishes go out at once. */
  private get live (): boolean {
    return this.state === 'connected' && !this.holding
  }

  private setState (s: ConnectionState): void {
    if (this.state === s) return
    this.state = s
    this.emit('state', s)
  }

  /** Resolves when the client is (or next becomes) connected; rejects if it is closed first. */
  whenConnected (): Promise<void> {
    if (this.state === 'connected') return Promise.resolve()
    if (this.state === 'closed') return Promise.reject(clientError('RTW_CLIENT_CLOSED'))
    return new Promise((resolve, reject) => {
      const offs = [
        this.on('connected', () => { offs.forEach(f => f()); resolve() }),
        this.on('state', s => { if (s === 'closed') { offs.forEach(f => f()); reject(clientError('RTW_CLIENT_CLOSED')) } })
      ]
    })
  }

  /** @internal Starts the first connection; connect() calls it. */
  start (): this {
    void this.open()
    return this
  }

  /** The token to use now: the cached one unless it is missing or about to expire. Concurrent callers share one getToken call. */
  private async currentToken (): Promise<string | undefined> {
    const get = this.opts.getToken
    if (get === undefined) return this.token
    const exp = this.token === undefined ? undefined : tokenExpiry(this.token)
    if (this.token === undefined || (exp !== undefined && exp - Date.now() < 1000)) {
      this.fetching ??= Promise.resolve().then(get).finally(() => { this.fetching = undefined })
      this.token = await this.fetching
    }
    return this.token
  }

  private async open (): Promise<void> {
    this.setState('connecting')
    let password: string | undefined
    try {
      password = await this.currentToken()
    } catch (err) {
      this.emit('error', clientError('RTW_CLIENT_CONNECT_REFUSED', `getToken failed: ${(err as Error).message}`))
      return this.retry('getToken failed')
    }
    if (this.state !== 'connecting') return
    try {
      this.conn = this.connection(password)
    } catch (err) {
      // The WebSocket constructor refused outright (a bad URL, a CSP rule): retrying cannot help.
      const e = clientError('RTW_CLIENT_INVALID_ARGUMENT', `cannot open a WebSocket to ${this.url}: ${(err as Error).message}`)
      this.emit('error', e)
      this.shutdown(e.message)
    }
  }

  private connection (password: string | undefined): Connection {
    const conn: Connection = new Connection({
      url: this.url,
      WebSocket: this.WebSocket,
      clientId: this.clientId,
      keepalive: this.opts.keepalive ?? 25,
      username: password === undefined ? this.opts.username : this.opts.username ?? 'jwt',
      password,
      pingTimeoutMs: Math.min(this.opts.pingTimeout ?? 10_000, (this.opts.keepalive ?? 25) * 1000),
      connectTimeoutMs: this.opts.connectTimeout ?? 10_000,
      workerTimers: this.opts.workerTimers !== false
    }, {
      connected: () => { void this.onSession(conn) },
      message: (topic, payload, retain) => this.dispatch(topic, payload, retain),
      closed: (reason, code) => this.onClosed(conn, reason, code)
    })
    return conn
  }

  /** CONNACK arrived: subscribe the inbox and every filter in one SUBSCRIBE, then go live. */
  private async onSession (conn: Connection): Promise<void> {
    const filters = [...this.subs.keys()]
    const list: Array<[string, QoS]> = [[`$inbox/${this.clientId}/#`, 1], ...filters.map((f): [string, QoS] => [wire(f, this.subs.get(f) as Sub), (this.subs.get(f) as Sub).qos])]
    const id = conn.nextId()
    const acked = conn.ack(id)
    conn.write(encodeSubscribe(id, list))
    let granted: number[]
    try {
      const p = await acked
      granted = p.type === SUBACK ? p.granted : []
    } catch {
      return // the connection closed first; onClosed handles it
    }
    if (granted[0] === 0x80) this.emit('error', clientError('RTW_CLIENT_SUBSCRIBE_REFUSED', `$inbox/${this.clientId}/#: requests over MQTT cannot get replies`))
    filters.forEach((f, i) => this.settleSub(f, granted[i + 1]))
    const reconnected = this.everConnected
    this.everConnected = true
    this.attempt = 0
    this.setState('connected')
    this.scheduleRefresh()
    this.emit('connected', { clientId: this.clientId, reconnected })
    this.flush()
  }

  private settleSub (filter: string, code: number | undefined): void {
    const sub = this.subs.get(filter)
    if (sub === undefined) return
    const waiters = sub.waiters
    sub.waiters = []
    if (code === undefined || code === 0x80) {
      // Refused: forget the filter, so it is not retried on every reconnect.
      this.subs.delete(filter)
      const err = clientError('RTW_CLIENT_SUBSCRIBE_REFUSED', filter)
      for (const [, reject] of waiters) reject(err)
      this.emit('error', err)
      return
    }
    sub.active = true
    if (sub.recover) void this.recoverSub(filter, sub)
    for (const [resolve] of waiters) resolve()
  }

  /**
   * [P-16.3] After the SUBACK of a recovering subscription: hold its copies,
   * fetch what it missed since its last position, deliver that, then the held
   * copies not already replayed. The first time, it only learns where it stands.
   */
  private async recoverSub (filter: string, sub: Sub): Promise<void> {
    sub.held = []
    const since = sub.position
    let missed
    try {
      missed = await fetchMissed(this.opts.fetch ?? fetch, this.restBase, filter, since, await this.currentToken())
    } catch (err) {
      missed = { recovered: false, position: undefined, messages: [] }
      this.emit('error', clientError('RTW_CLIENT_NETWORK', `recovery of ${filter}: ${(err as Error).message}`))
    }
    if (this.subs.get(filter) !== sub) return
    const held = sub.held
    sub.held = null
    let upTo = since
    if (since !== undefined && missed.recovered) {
      for (const m of missed.messages) this.deliver(sub, m.topic, m.payload, false, m.id)
      upTo = missed.position
    } else if (since === undefined) {
      upTo = missed.position
    }
    if (upTo !== undefined && (sub.position === undefined || isAfter(upTo, sub.position))) sub.position = upTo
    for (const m of held) {
      // Copies the replay carried already; with recovered: false none was replayed.
      if (m.position !== undefined && missed.recovered && !isAfter(m.position, upTo)) continue
      this.deliver(sub, m.topic, m.payload, m.retain, m.position)
    }
    if (since !== undefined) this.emit('recovered', { filter, recovered: missed.recovered })
  }

  private deliver (sub: Sub, topic: string, payload: Uint8Array, retain: boolean, position: string | undefined): void {
    if (position !== undefined) sub.position = position
    let text: string | undefined
    const message: Message = {
      topic,
      payload,
      get text () { return (text ??= new TextDecoder().decode(payload)) },
      retain
    }
    if (position !== undefined) message.position = position
    for (const h of [...sub.handlers]) {
      try {
        h(message)
      } catch (err) {
        setTimeout(() => { throw err }, 0)
      }
    }
  }

  /** Sends what waited for a connection: requests first (they have deadlines), then publishes in order. */
  private flush (): void {
    if (!this.live) return
    this.requests.flush()
    const out = this.outbox
    this.outbox = []
    for (const o of out) this.transmit(o)
  }

  private onClosed (conn: Connection, reason: string, returnCode?: number): void {
    if (this.conn !== conn) return
    this.conn = null
    for (const sub of this.subs.values()) sub.active = false
    this.cancelRefresh()
    this.requests.connectionLost()
    if (this.state === 'closed') return
    this.holding = false
    if (reason === 'token refresh') {
      // A planned reconnect with a fresh token: no backoff.
      void this.open()
      return
    }
    // A drop during a refresh's wait: stop waiting, reconnect as after any drop.
    this.refreshWait?.()
    // The node may be gone: the next attempt goes to the next one of a cluster.
    this.urlAt = (this.urlAt + 1) % this.urls.length
    // No WebSocket to any node ever got a session, and no CONNACK refused one: a proxy or
    // network that blocks WebSockets, most likely. Go on over EventSource and fetch instead.
    if (!this.everConnected && returnCode === undefined && this.fallbackAvailable && this.attempt + 1 >= this.urls.length) return this.useFallback(reason)
    if (returnCode !== undefined && returnCode !== 3) {
      // [MQTT-3.2.2.3] 1, 2: this client can never connect; 4, 5: the credentials were refused,
      // which only a fresh token can change.
      const err = clientError('RTW_CLIENT_CONNECT_REFUSED', `CONNACK return code ${returnCode}`)
      this.emit('error', err)
      if (this.opts.getToken === undefined || returnCode < 4) return this.shutdown(err.message)
      this.token = undefined
    }
    this.retry(reason)
  }

  private retry (reason: string): void {
    const delayMs = backoffDelay(this.attempt, {
      minDelayMs: this.opts.minReconnectDelay ?? 500,
      maxDelayMs: this.opts.maxReconnectDelay ?? 20_000
    })
    this.attempt++
    this.setState('disconnected')
    this.emit('disconnected', { reason, willReconnect: true, delayMs, attempt: this.attempt })
    this.cancelRetry = schedule(() => this.reconnectNow(), delayMs, this.opts.workerTimers !== false)
  }

  private reconnectNow (): void {
    if (this.state !== 'disconnected') return
    this.cancelRetry()
    void this.open()
  }

  /**
   * Token refresh: MQTT 3.1.1 cannot re-authenticate a live connection, so
   * before the token expires the client gets a new one, holds new requests and
   * publishes, lets the requests in flight finish (up to 5 s), then reconnects
   * at once with the new token.
   */
  private scheduleRefresh (): void {
    this.cancelRefresh()
    const exp = this.token === undefined || this.opts.getToken === undefined ? undefined : tokenExpiry(this.token)
    if (exp === undefined) return
    // At least a second apart, so a getToken that hands out nearly expired tokens cannot cause a reconnect storm.
    const ms = Math.max(1000, refreshDelay(exp, Date.now(), this.opts.refreshMargin ?? 60_000))
    this.cancelRefresh = schedule(() => { void this.refresh(exp) }, ms, this.opts.workerTimers !== false)
  }

  private async refresh (oldExp: number): Promise<void> {
    let fresh: string
    try {
      fresh = await (this.opts.getToken as () => string | Promise<string>)()
    } catch (err) {
      this.emit('error', clientError('RTW_CLIENT_CONNECT_REFUSED', `token refresh failed: ${(err as Error).message}`))
      if (oldExp - Date.now() > 2000) this.cancelRefresh = schedule(() => { void this.refresh(oldExp) }, Math.min(5000, (oldExp - Date.now()) / 2), this.opts.workerTimers !== false)
      return
    }
    if (this.state !== 'connected' || this.conn === null) {
      this.token = fresh
      return
    }
    const conn = this.conn
    this.token = fresh
    this.holding = true
    await new Promise<void>(resolve => {
      const cancel = schedule(() => resolve(), 5000, this.opts.workerTimers !== false)
      this.refreshWait = () => { cancel(); resolve() }
      if (this.requests.inFlight === 0) this.refreshWait()
    })
    this.refreshWait = null
    if (this.conn === conn && this.state === 'connected') conn.close('token refresh')
    else this.holding = false
  }

  private onRequestSettled (): void {
    if (this.refreshWait !== null && this.requests.inFlight === 0) this.refreshWait()
  }

  private send (bytes: Uint8Array): boolean {
    return this.conn?.write(bytes) ?? false
  }

  private dispatch (topic: string, payload: Uint8Array, retain: boolean): void {
    if (topic.startsWith(`$inbox/${this.clientId}/`)) return this.requests.reply(payload)
    const copy = parseCopy(topic, payload)
    for (const [filter, sub] of this.subs) {
      if (copy !== null) {
        if (!sub.recover || !topicMatches(filter, copy.topic)) continue
        if (sub.held !== null) sub.held.push({ topic: copy.topic, payload: copy.payload, text: '', retain: false, ...(copy.position === undefined ? {} : { position: copy.position }) })
        else this.deliver(sub, copy.topic, copy.payload, false, copy.position)
        continue
      }
      if (sub.recover || !topicMatches(filter, topic)) continue
      this.deliver(sub, topic, payload, retain, undefined)
    }
  }

  private get fallbackAvailable (): boolean {
    return fallbackEventSource(this.opts) !== undefined
  }

  /** Switches to the fallback transport for good: subscriptions over EventSource, publishes and requests over fetch (fallback.ts). */
  private useFallback (reason: string): void {
    this.transport = 'sse'
    this.emit('transport', 'sse')
    this.emit('error', clientError('RTW_CLIENT_NETWORK', `no WebSocket (${reason}): using EventSource and fetch`))
    const sse = new Fallback<Sub>(this.restBase, fallbackEventSource(this.opts) as EventSourceConstructor, {
      subs: this.subs,
      token: async () => await this.currentToken(),
      deliver: this.deliver.bind(this),
      recovered: (filter, recovered) => this.emit('recovered', { filter, recovered }),
      connected: () => this.state === 'connected',
      open: () => {
        this.attempt = 0
        const reconnected = this.everConnected
        this.everConnected = true
        this.setState('connected')
        this.emit('connected', { clientId: this.clientId, reconnected })
        this.flush()
      },
      dropped: fatal => {
        this.setState('disconnected')
        if (!fatal) return // EventSource reconnects by itself, and the gateway recovers [P-15.5]
        const delayMs = backoffDelay(this.attempt++, { minDelayMs: this.opts.minReconnectDelay ?? 500, maxDelayMs: this.opts.maxReconnectDelay ?? 20_000 })
        this.emit('disconnected', { reason: 'stream refused', willReconnect: true, delayMs, attempt: this.attempt })
        this.cancelRetry = schedule(() => sse.update(), delayMs, this.opts.workerTimers !== false)
      }
    })
    this.sse = sse
    this.setState('connecting')
    sse.update()
  }

  /**
   * Makes a request over MQTT (default) or REST. Resolves with the reply,
   * whatever its status; rejects with a GatewayError when the gateway (or this
   * client) could not get one. See README "Pending requests" for what happens
   * when the connection drops.
   */
  request (service: string, path = '', options: RequestOptions = {}): Promise<Response> {
    if (this.state === 'closed') return Promise.reject(clientError('RTW_CLIENT_CLOSED'))
    // Until the first connection says which transport carries requests, they wait for it.
    if (!this.everConnected && options.via !== 'rest' && this.fallbackAvailable) return this.whenConnected().then(async () => await this.request(service, path, options))
    const timeout = options.timeout ?? this.opts.requestTimeout ?? 10_000
    if (options.via === 'rest' || this.transport === 'sse') {
      return this.currentToken().then(token => restRequest(this.opts.fetch ?? fetch, this.restBase, service, path, options, timeout, token),
        err => Promise.reject(clientError('RTW_CLIENT_NETWORK', `getToken failed: ${(err as Error).message}`)))
    }
    if (!this.live && this.queued >= (this.opts.maxQueued ?? 1000)) return Promise.reject(clientError('RTW_CLIENT_QUEUE_FULL'))
    return this.requests.start(service, path, options, timeout)
  }

  private get queued (): number {
    return this.outbox.length + this.requests.waiting
  }

  /** Subscribes handler to an MQTT topic filter; the subscription is renewed after every reconnect. */
  subscribe (filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    if (!isValidTopicFilter(filter)) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', `invalid topic filter ${JSON.stringify(filter)}`)
    if (this.state === 'closed') throw clientError('RTW_CLIENT_CLOSED')
    const qos = options.qos ?? 0
    let sub = this.subs.get(filter)
    if (sub !== undefined && sub.recover !== (options.recover === true)) throw clientError('RTW_CLIENT_INVALID_ARGUMENT', `${filter} is already subscribed with recover: ${String(sub.recover)}`)
    const fresh = sub === undefined || qos > sub.qos
    if (sub === undefined) {
      sub = { qos, handlers: new Set(), active: false, waiters: [], recover: options.recover === true, held: null, wantsRetained: true }
      this.subs.set(filter, sub)
      this.sse?.update()
    }
    sub.qos = qos > sub.qos ? qos : sub.qos
    sub.handlers.add(handler)
    const s = sub
    const ready = s.active && !fresh
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => s.waiters.push([resolve, reject]))
    ready.catch(() => {}) // a refusal is also reported on 'error'; nobody has to await this
    if (fresh && this.conn?.ready === true) {
      const conn = this.conn
      const id = conn.nextId()
      conn.ack(id).then(p => { if (this.subs.get(filter) === s) this.settleSub(filter, p.type === SUBACK ? p.granted[0] : undefined) }, () => {})
      conn.write(encodeSubscribe(id, [[wire(filter, s), s.qos]]))
    }
    const unsubscribe = (): void => {
      if (!s.handlers.delete(handler) || s.handlers.size > 0 || this.subs.get(filter) !== s) return
      this.subs.delete(filter)
      for (const [resolve] of s.waiters) resolve()
      this.sse?.update()
      if (this.conn?.ready === true) {
        const id = this.conn.nextId()
        this.conn.ack(id).catch(() => {})
        this.conn.write(encodeUnsubscribe(id, [wire(filter, s)]))
      }
    }
    return Object.assign(unsubscribe, { ready })
  }

  /**
   * Publishes a message. QoS 0 resolves once written to the socket, QoS 1 on
   * the gateway's PUBACK. While disconnected it waits in a queue; a QoS 1
   * publish not yet acknowledged when the connection drops is sent again
   * after reconnecting (at least once).
   */
  publish (topic: string, payload: BodyInit, options: PublishOptions = {}): Promise<void> {
    if (!isValidTopicName(topic)) return Promise.reject(clientError('RTW_CLIENT_INVALID_ARGUMENT', `invalid topic ${JSON.stringify(topic)}`))
    if (this.state === 'closed') return Promise.reject(clientError('RTW_CLIENT_CLOSED'))
    if (!this.live && this.queued >= (this.opts.maxQueued ?? 1000)) return Promise.reject(clientError('RTW_CLIENT_QUEUE_FULL'))
    return new Promise((resolve, reject) => {
      const o: Outgoing = { topic, payload: toBytes(payload), qos: options.qos ?? 0, retain: options.retain ?? false, resolve, reject }
      if (this.live) this.transmit(o)
      else this.outbox.push(o)
    })
  }

  private transmit (o: Outgoing): void {
    if (this.sse !== null) {
      this.sse.publish(this.opts.fetch ?? fetch, o.topic, o.payload, o.qos, o.retain).then(o.resolve, o.reject)
      return
    }
    const conn = this.conn
    if (conn === null || !this.live) return void this.outbox.push(o)
    if (o.qos === 0) {
      if (conn.write(encodePublish(o.topic, o.payload, 0, o.retain, 0))) o.resolve()
      else this.outbox.push(o)
      return
    }
    const id = conn.nextId()
    conn.ack(id).then(() => o.resolve(), () => {
      if (this.state === 'closed') o.reject(clientError('RTW_CLIENT_CLOSED'))
      else this.outbox.push(o)
    })
    conn.write(encodePublish(o.topic, o.payload, 1, o.retain, id))
  }

  /** Closes the connection for good: pending requests and queued publishes reject with RTW_CLIENT_CLOSED. */
  close (): void {
    if (this.state === 'closed') return
    this.shutdown('closed by the application', false)
  }

  private shutdown (reason: string, report = true): void {
    this.setState('closed')
    this.cancelRetry()
    this.cancelRefresh()
    this.detach()
    this.conn?.close(reason)
    this.conn = null
    this.sse?.close()
    const err = clientError('RTW_CLIENT_CLOSED', reason)
    this.requests.closeAll(err)
    for (const o of this.outbox) o.reject(err)
    this.outbox = []
    for (const sub of this.subs.values()) for (const [, reject] of sub.waiters) reject(err)
    this.subs.clear()
    if (report) this.emit('disconnected', { reason, willReconnect: false, delayMs: 0, attempt: this.attempt })
  }
}

/** Creates a client and starts connecting. Requests, publishes and subscriptions made before it connects wait for it. */
export function connect (options: ConnectOptions = {}): RealtimeClient {
  return new RealtimeClient(options).start()
}

