// A small MQTT 3.1.1 client for the echo server, on mqtt-packet alone.
//
// MQTT.js spent most of the echo server's CPU per request: a parser stream
// and a writable stream per connection, in-flight stores, debug() calls and a
// tick per packet. On the benchmark machine the gateway, the echo server and
// the load generator share two cores, so each of those µs was taken from the
// gateway. This client does only what a responder needs: one connection, clean
// session, subscribe at QoS 1, acknowledge deliveries, publish replies at QoS
// 0 or 1 without a store (a reply lost on a drop stays lost, as a clean session
// means anyway), keepalive, and reconnect at a fixed period.
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { batchWrites } from '../net/write-batch.js'

export interface MqttClientOptions {
  /**
   * mqtt://host[:port] or mqtts://host[:port]; user and password in the URL are
   * used unless given below. A comma list names several nodes of a cluster:
   * the first is tried first, and each reconnect goes to the next one.
   */
  url: string
  clientId: string
  username?: string
  password?: string
  /** Topic filters, each subscribed at QoS 1 in its own SUBSCRIBE. */
  subscriptions: string[]
  /** Seconds (default 60). */
  keepalive?: number
  /** Delay before each new attempt after a drop or a failed attempt (default 500 ms). */
  reconnectPeriodMs?: number
  /** How long an attempt may take from the socket to the CONNACK (default 5 s). */
  connectTimeoutMs?: number
  /** Every PUBLISH received, called in the turn its bytes arrived. */
  onMessage: (topic: string, payload: Buffer) => void
  /** The broker's answer to each filter's SUBSCRIBE, on every (re)connect. */
  onSubscribe?: (filter: string, granted: boolean) => void
  /** Errors, refusals and reconnects, one line each. */
  onLog?: (line: string) => void
}

interface Endpoint { tls: boolean, host: string, port: number, username?: string, password?: string }

/** Throws for anything but mqtt:// and mqtts://, so a typo fails at start-up rather than in a reconnect loop. */
export function parseBrokerUrl (url: string): Endpoint {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new Error(`not a URL: ${url}`)
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') throw new Error(`unsupported scheme ${u.protocol} in ${url} (use mqtt:// or mqtts://)`)
  const tls = u.protocol === 'mqtts:'
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') throw new Error(`no host in ${url}`)
  const endpoint: Endpoint = { tls, host, port: u.port === '' ? (tls ? 8883 : 1883) : Number(u.port) }
  if (u.username !== '') endpoint.username = decodeURIComponent(u.username)
  if (u.password !== '') endpoint.password = decodeURIComponent(u.password)
  return endpoint
}

const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized'
}

export class MqttClient {
  private readonly endpoints: Endpoint[]
  private endpoint: Endpoint
  private readonly keepaliveMs: number
  private socket: Socket | null = null
  private connected = false
  private ending = false
  private nextId = 1
  /** SUBSCRIBE packet id → its filter, until the SUBACK. */
  private readonly pendingSubs = new Map<number, string>()
  private connectTimer: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private keepaliveTimer: NodeJS.Timeout | undefined
  /** Anything written since the last keepalive check; a flag is cheaper than a timestamp per packet. */
  private sentSinceCheck = false
  private pingOutstanding = false
  /** The socket's last error, told with the close that follows it. */
  private lastError: string | undefined
  /** When the current run of failed connects began (0: connected, or none yet). */
  private failingSince = 0
  private nextFailureLog = 0

  constructor (private readonly opts: MqttClientOptions) {
    this.endpoints = opts.url.split(',').map(u => parseBrokerUrl(u.trim()))
    this.endpoint = this.endpoints[0] as Endpoint
    this.keepaliveMs = (opts.keepalive ?? 60) * 1000
    this.open()
  }

  get isConnected (): boolean {
    return this.connected
  }

  /**
   * Publishes now, or drops the message when not connected (false). QoS 1 gets
   * the next packet id and nothing is kept for its PUBACK.
   */
  publish (topic: string, payload: Buffer | string, qos: 0 | 1 = 0): boolean {
    if (!this.connected) return false
    if (qos === 0) this.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false })
    else this.send({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, messageId: this.takeId() })
    return true
  }

  /** Sends DISCONNECT when connected, closes the socket and stops reconnecting. Resolves once the bytes are handed to the kernel. */
  async end (): Promise<void> {
    this.ending = true
    clearTimeout(this.reconnectTimer)
    this.stopTimers()
    const socket = this.socket
    if (socket === null || socket.destroyed) return
    if (!this.connected) {
      socket.destroy()
      return
    }
    this.send({ cmd: 'disconnect' })
    this.connected = false
    await new Promise<void>(resolve => {
      socket.once('close', () => resolve())
      // 'finish': the DISCONNECT and the FIN are written; the broker's own close may come later.
      socket.end(() => resolve())
    })
  }

  private takeId (): number {
    const id = this.nextId
    // 1..65535; 0 is not a valid packet id [MQTT-2.3.1-1].
    this.nextId = id === 65535 ? 1 : id + 1
    return id
  }

  private send (packet: Packet): void {
    this.sentSinceCheck = true
    // generate() gives one Buffer per packet; batchWrites gathers a turn's packets into one write.
    this.socket?.write(mqttPacket.generate(packet))
  }

  private log (line: string): void {
    this.opts.onLog?.(line)
  }

  private open (): void {
    const { tls, host, port } = this.endpoint
    // tls.connect verifies the certificate by default, against Node's CAs plus NODE_EXTRA_CA_CERTS.
    const socket = tls
      ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}) })
      : netConnect({ host, port })
    this.socket = socket
    // A request's PUBACK and its reply would otherwise wait on Nagle plus delayed ACK.
    socket.setNoDelay(true)
    batchWrites(socket)
    // A fresh parser per connection: a half-read packet from a dropped one must not prefix the next.
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    // The parser emits every whole packet of a read synchronously, so a batch of
    // requests is answered in this turn and its replies leave in one write.
    parser.on('packet', (packet: Packet) => this.handle(packet))
    parser.on('error', (err: Error) => {
      this.log(`bad packet from the broker: ${err.message}`)
      socket.destroy()
    })
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', (err: Error) => { this.lastError = err.message })
    socket.on('close', () => this.closed(socket))
    this.connectTimer = setTimeout(() => {
      this.log(`no CONNACK within ${this.opts.connectTimeoutMs ?? 5000} ms`)
      socket.destroy()
    }, this.opts.connectTimeoutMs ?? 5000)

    const username = this.opts.username ?? this.endpoint.username
    const password = this.opts.password ?? this.endpoint.password
    // Written before the socket is connected: net queues it until then.
    this.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId: this.opts.clientId,
      clean: true,
      keepalive: this.keepaliveMs / 1000,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password: Buffer.from(password) })
    })
  }

  private closed (socket: Socket): void {
    if (socket !== this.socket) return
    this.socket = null
    this.connected = false
    this.pendingSubs.clear()
    this.stopTimers()
    if (this.ending) return
    // A node that closed or refused the connection may be gone: the next one is tried (a cluster's other nodes).
    this.endpoint = this.endpoints[(this.endpoints.indexOf(this.endpoint) + 1) % this.endpoints.length] as Endpoint
    this.logFailure(`${this.lastError === undefined ? 'connection closed' : this.lastError}; reconnecting to ${this.endpoint.host}:${this.endpoint.port} every ${this.opts.reconnectPeriodMs ?? 500} ms`)
    this.lastError = undefined
    this.reconnectTimer = setTimeout(() => this.open(), this.opts.reconnectPeriodMs ?? 500)
  }

  /**
   * The first failure of an outage is told at once, then one line each 30 s
   * until a CONNACK: a broker still starting (npm start launches both at once)
   * is not worth a line per retry.
   */
  private logFailure (line: string): void {
    const now = Date.now()
    if (this.failingSince === 0) this.failingSince = now
    else if (now < this.nextFailureLog) return
    else line = `${line} (failing for ${Math.round((now - this.failingSince) / 1000)} s)`
    this.nextFailureLog = now + 30_000
    this.log(line)
  }

  private stopTimers (): void {
    clearTimeout(this.connectTimer)
    clearInterval(this.keepaliveTimer)
    this.keepaliveTimer = undefined
  }

  private handle (packet: Packet): void {
    switch (packet.cmd) {
      case 'publish': {
        const id = packet.messageId
        if (packet.qos === 1 && id !== undefined) this.send({ cmd: 'puback', messageId: id })
        // Never asked for (it subscribes at QoS 1), but answered rather than left hanging.
        else if (packet.qos === 2 && id !== undefined) this.send({ cmd: 'pubrec', messageId: id })
        try {
          this.opts.onMessage(packet.topic, packet.payload as Buffer)
        } catch (err) {
          // One bad request must not take the connection, or the rest of its read, down.
          this.log(`handler failed on ${packet.topic}: ${err instanceof Error ? err.message : String(err)}`)
        }
        return
      }
      case 'pubrel':
        if (packet.messageId !== undefined) this.send({ cmd: 'pubcomp', messageId: packet.messageId })
        return
      case 'connack':
        this.connack(packet.returnCode ?? 0)
        return
      case 'suback': {
        const filter = packet.messageId === undefined ? undefined : this.pendingSubs.get(packet.messageId)
        if (filter === undefined) return
        this.pendingSubs.delete(packet.messageId as number)
        this.opts.onSubscribe?.(filter, packet.granted[0] !== 0x80)
        return
      }
      case 'pingresp':
        this.pingOutstanding = false
        return
      default:
        // PUBACK and PUBCOMP for replies: nothing is stored, so nothing to release.
    }
  }

  private connack (code: number): void {
    if (this.connected) return
    clearTimeout(this.connectTimer)
    if (code !== 0) {
      // Retried like a drop: a token may be accepted later (a key file reloaded, a restarted broker).
      this.log(`connection refused: ${CONNACK_REASONS[code] ?? 'unknown reason'} (${code})`)
      this.socket?.destroy()
      return
    }
    this.connected = true
    this.failingSince = 0
    this.pingOutstanding = false
    this.sentSinceCheck = false
    // Checked at half the keepalive, so at most one keepalive passes without a packet
    // from here, and a PINGREQ not answered by the next check ends the connection.
    this.keepaliveTimer = setInterval(() => this.checkKeepalive(), this.keepaliveMs / 2)
    // One SUBSCRIBE per filter, so a token that may serve only some services still serves those.
    for (const filter of this.opts.subscriptions) {
      const messageId = this.takeId()
      this.pendingSubs.set(messageId, filter)
      this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos: 1 }] })
    }
  }

  private checkKeepalive (): void {
    if (this.pingOutstanding) {
      this.log('no PINGRESP from the broker')
      this.socket?.destroy()
      return
    }
    if (!this.sentSinceCheck) {
      this.pingOutstanding = true
      this.send({ cmd: 'pingreq' })
    }
    this.sentSinceCheck = false
  }
}
