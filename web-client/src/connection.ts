// One MQTT session over one WebSocket: CONNECT/CONNACK, framing, packet ids,
// acknowledgements and keepalive. It never reconnects; the client makes a new
// Connection for each attempt, so no state leaks from a dead socket.
import {
  CONNACK, DISCONNECT_BYTES, PINGREQ_BYTES, PINGRESP, PUBACK, PUBLISH, SUBACK, UNSUBACK,
  PacketReader, encodeConnect, encodePuback, type ConnectFields, type Packet
} from './codec.js'
import { schedule, type Cancel } from './timers.js'

/** The parts of the WebSocket API this library uses; the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  binaryType: string
  readyState: number
  onopen: ((ev: never) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number, reason: string }) => void) | null
  onerror: ((ev: never) => void) | null
  send: (data: Uint8Array) => void
  close: (code?: number, reason?: string) => void
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => object

export interface ConnectionOptions extends ConnectFields {
  url: string
  WebSocket: WebSocketConstructor
  /** A PINGRESP must arrive this long after a PINGREQ, or the connection is dead. */
  pingTimeoutMs: number
  /** The WebSocket must open and the CONNACK arrive within this. */
  connectTimeoutMs: number
  workerTimers: boolean
}

export interface ConnectionHandlers {
  /** CONNACK accepted the session. */
  connected: () => void
  /** An incoming PUBLISH; QoS 1 is acknowledged after this returns. */
  message: (topic: string, payload: Uint8Array, retain: boolean) => void
  /** Called exactly once, whatever closed the connection. returnCode is a refusing CONNACK's. */
  closed: (reason: string, returnCode?: number) => void
}

const OPEN = 1

interface Waiter { resolve: (p: Packet) => void, reject: (e: Error) => void }

export class Connection {
  /** True once CONNACK accepted the session, false again once closed. */
  ready = false
  /** True once the WebSocket opened: a connection that never did points at a proxy or network that blocks WebSockets. */
  opened = false
  private readonly ws: WebSocketLike
  private readonly reader = new PacketReader()
  private readonly waiters = new Map<number, Waiter>()
  private lastId = 0
  private done = false
  private cancelConnect: Cancel
  private cancelPing: Cancel = () => {}
  private cancelPong: Cancel = () => {}

  constructor (private readonly opts: ConnectionOptions, private readonly on: ConnectionHandlers) {
    // [MQTT-6.0.0-3] the subprotocol is "mqtt"; frames are binary [MQTT-6.0.0-1].
    this.ws = new opts.WebSocket(opts.url, ['mqtt']) as WebSocketLike
    this.ws.binaryType = 'arraybuffer'
    this.cancelConnect = this.timer(() => this.close('connect timeout'), opts.connectTimeoutMs)
    this.ws.onopen = () => {
      this.opened = true
      this.write(encodeConnect(opts))
    }
    this.ws.onmessage = ev => this.receive(ev.data)
    this.ws.onerror = () => {}
    this.ws.onclose = ev => this.finish(`socket closed (${ev.code}${ev.reason === '' ? '' : ' ' + ev.reason})`)
  }

  private timer (fn: () => void, ms: number): Cancel {
    return schedule(fn, ms, this.opts.workerTimers)
  }

  /** Writes a packet; false when the socket is not open (the packet is lost). */
  write (bytes: Uint8Array): boolean {
    if (this.done || this.ws.readyState !== OPEN) return false
    this.ws.send(bytes)
    return true
  }

  /** A packet identifier not in use on this session [MQTT-2.3.1-2]. */
  nextId (): number {
    do this.lastId = this.lastId % 65_535 + 1
    while (this.waiters.has(this.lastId))
    return this.lastId
  }

  /** Resolves with the PUBACK, SUBACK or UNSUBACK for id; rejects if the connection closes first. */
  ack (id: number): Promise<Packet> {
    return new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }))
  }

  /** Closes politely (DISCONNECT, then the socket) and reports `reason` to the handler. */
  close (reason: string): void {
    if (this.done) return
    if (this.ready) this.write(DISCONNECT_BYTES)
    try {
      this.ws.close(1000)
    } catch { /* already closed */ }
    this.finish(reason)
  }

  private finish (reason: string, returnCode?: number): void {
    if (this.done) return
    this.done = true
    this.ready = false
    this.cancelConnect()
    this.cancelPing()
    this.cancelPong()
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = null
    const err = new Error(reason)
    for (const w of this.waiters.values()) w.reject(err)
    this.waiters.clear()
    this.on.closed(reason, returnCode)
  }

  private receive (data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return this.close('text frame received')
    let packets: Packet[]
    try {
      packets = this.reader.push(new Uint8Array(data))
    } catch (err) {
      return this.close((err as Error).message)
    }
    for (const p of packets) {
      if (this.done) return
      this.handle(p)
    }
  }

  private handle (p: Packet): void {
    switch (p.type) {
      case CONNACK:
        if (p.returnCode !== 0) {
          try {
            this.ws.close(1000)
          } catch { /* already closed */ }
          return this.finish(`connection refused (CONNACK ${p.returnCode})`, p.returnCode)
        }
        this.cancelConnect()
        this.ready = true
        this.keepalive()
        return this.on.connected()
      case PUBLISH:
        this.on.message(p.topic, p.payload, p.retain)
        // [MQTT-4.3.2-2] acknowledge QoS 1; QoS 2 is never granted because the client never asks for it.
        if (p.qos === 1) this.write(encodePuback(p.id))
        return
      case PUBACK:
      case SUBACK:
      case UNSUBACK: {
        const w = this.waiters.get(p.id)
        this.waiters.delete(p.id)
        return w?.resolve(p)
      }
      case PINGRESP:
        return this.cancelPong()
    }
  }

  /**
   * [MQTT-3.1.2-23] a packet at least every keepalive seconds: a PINGREQ on a
   * fixed beat, and the connection is declared dead when no PINGRESP follows
   * within pingTimeoutMs (Centrifugo's 25 s ping / 8 s pong idea).
   */
  private keepalive (): void {
    if (this.opts.keepalive <= 0) return
    this.cancelPing = this.timer(() => {
      if (!this.write(PINGREQ_BYTES)) return
      this.cancelPong = this.timer(() => this.close('keepalive timeout'), this.opts.pingTimeoutMs)
      this.keepalive()
    }, this.opts.keepalive * 1000)
  }
}
