// Per-connection MQTT limits (README "Limits"): packet size, connection rate
// per remote address, publish rate, subscriptions per client, and the outbound
// buffer of slow consumers. Each is a broker hook; the per-PUBLISH and
// per-delivery checks are O(1) and allocate nothing.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Client } from '../../broker/broker.js'
import { guardConnection } from '../../broker/packet-guard.js'
import { clientAddress } from '../core/client-address.js'
import { KeyedRateLimiter, TokenBucket } from '../core/rate-limit.js'
import { REQ_PREFIX, RES_PREFIX } from '../core/topics.js'
import { LogLimiter } from '../log-limit.js'

export interface LimitCounters {
  /** Connections closed because a packet announced more than maxPacketSize bytes. */
  oversizePackets: number
  /** Connections closed by the packet guard: a Remaining Length past 4 bytes, a SUBSCRIBE/UNSUBSCRIBE without filters. */
  malformedPackets: number
  /** New connections refused by the per-address connection rate (TCP closed, WebSocket 429). */
  connectionsRefused: number
  /** PUBLISH packets acknowledged and dropped by the per-client publish rate. */
  publishesDropped: number
  /** Subscriptions refused (SUBACK 0x80) by maxSubscriptions. */
  subscriptionsRefused: number
  /** Clients disconnected for holding more than maxOutboundBytes unsent. */
  slowConsumers: number
}

export interface Limits {
  readonly counters: LimitCounters
  /** Takes a connection token for a remote address; false when it connects too fast. */
  admitConnection: (address: string | undefined) => boolean
  /** The client address of an HTTP request or WebSocket upgrade: its peer's, or the one X-Forwarded-For names when the peer is in trustedProxies (as req.ip). */
  addressOf: (req: IncomingMessage) => string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    limits: Limits
  }
}

interface ConnectionState {
  bucket: TokenBucket
  filters: Set<string>
}

const STATE = Symbol('rtw.limits')
type Tagged = Duplex & { [STATE]?: ConnectionState }

const stateOf = (client: Client): ConnectionState | undefined => (client.conn as Tagged)[STATE]

/**
 * Lets a TCP socket queue up to `bytes` before write() reports backpressure.
 * Below the outbound limit Aedes then never waits for 'drain' (which would hold
 * one of its routing slots per message, PERF-NOTES pitfall 5); above it the
 * client is disconnected. Node has no public setter for a stream's high-water mark.
 */
function raiseWriteHighWater (conn: Duplex, bytes: number): void {
  const ws = (conn as unknown as { _writableState?: { highWaterMark?: unknown } })._writableState
  if (ws !== undefined && typeof ws.highWaterMark === 'number' && ws.highWaterMark < bytes) ws.highWaterMark = bytes
}

async function limitsPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const broker = app.broker
  const limited = new LogLimiter(app.log)
  const counters: LimitCounters = {
    oversizePackets: 0,
    malformedPackets: 0,
    connectionsRefused: 0,
    publishesDropped: 0,
    subscriptionsRefused: 0,
    slowConsumers: 0
  }
  const connectRate = new KeyedRateLimiter(config.connectRate, config.connectRate)

  const admitConnection = (address: string | undefined): boolean => {
    if (connectRate.take(address ?? '?', Date.now())) return true
    counters.connectionsRefused++
    limited.warn('connect-rate', `${address ?? '?'}: more than ${config.connectRate} new connections per second (connectRate); refused`)
    return false
  }
  // A WebSocket upgrade is asked twice (admission in plugins/websocket.ts, then
  // accept below), so each request's answer is kept with it.
  const addresses = new WeakMap<IncomingMessage, string | undefined>()
  const addressOf = (req: IncomingMessage): string | undefined => {
    if (addresses.has(req)) return addresses.get(req)
    const address = clientAddress(req, app.trust)
    addresses.set(req, address)
    return address
  }
  app.decorate('limits', { counters, admitConnection, addressOf })

  const hooks = broker.hooks

  hooks.accept = (conn: Duplex, req?: IncomingMessage): boolean => {
    // Over WebSocket, the address the upgrade was admitted under; MQTT over TCP has no headers.
    const address = req !== undefined ? addressOf(req) : (conn as Duplex & { remoteAddress?: string }).remoteAddress
    // WebSocket upgrades were admitted (or answered 429) before the handshake.
    if (req === undefined && !admitConnection(address)) return false
    // A TCP socket, or the upgraded socket of a WebSocket (broker/ws-stream.ts).
    raiseWriteHighWater(conn, config.maxOutboundBytes)
    guardConnection(conn, config.maxPacketSize, v => {
      if (v.kind === 'too-large') {
        counters.oversizePackets++
        limited.warn('packet-too-large', `${address ?? '?'}: a packet of ${v.size} bytes is over maxPacketSize (${config.maxPacketSize}); disconnected`)
      } else if (v.kind === 'malformed') {
        counters.malformedPackets++
        limited.warn('packet-malformed', `${address ?? '?'}: ${v.reason}; disconnected`)
      } else if (v.kind === 'packet-id-zero') {
        // A conformance refusal, logged like the broker's own (PUBLISH with id 0 and the like).
        hooks.refused?.(null, `${address ?? '?'}: ${v.reason}; disconnected`)
      } else {
        limited.warn('protocol-level', `${address ?? '?'}: CONNECT with unsupported protocol level ${v.level}; CONNACK 0x01 [MQTT-3.1.2-2]`)
      }
    })
    ;(conn as Tagged)[STATE] = {
      bucket: new TokenBucket(config.publishRate, config.publishRate, Date.now()),
      filters: new Set()
    }
    return true
  }

  // [MQTT-3.3.5-2] lets a server acknowledge a PUBLISH it will not deliver. Over
  // the rate, a publish is acknowledged (Aedes sent PUBACK already) and dropped:
  // a bursty client keeps its connection and subscriptions, and only the excess is lost.
  // Replies on $res/… are not counted: the gateway consumes them (no fan-out), each
  // answers a request it made, and a responder serves as many as its callers send.
  const inner = hooks.intercept
  hooks.intercept = (client, packet) => {
    const s = stateOf(client)
    if (s !== undefined && !(packet.topic.charCodeAt(0) === 36 && packet.topic.startsWith(RES_PREFIX)) && !s.bucket.take(Date.now())) {
      counters.publishesDropped++
      limited.warn('publish-rate', `client ${client.id}: more than ${config.publishRate} publishes per second (publishRate); dropped`)
      // A dropped request would leave its caller waiting for the timeout; say 429 in its inbox instead [P-12.2].
      if (packet.topic.startsWith(REQ_PREFIX)) app.bridge.refuseCaller(client.id, packet.payload as Buffer, 'RTW_TOO_MANY_REQUESTS')
      return true
    }
    return inner?.(client, packet) ?? false
  }

  const innerSubscribe = hooks.allowSubscribe
  hooks.allowSubscribe = (client, filter) => {
    if (innerSubscribe !== undefined && !innerSubscribe(client, filter)) return false
    const s = stateOf(client)
    if (s === undefined || s.filters.has(filter)) return true
    if (s.filters.size >= config.maxSubscriptions) {
      counters.subscriptionsRefused++
      limited.warn('max-subscriptions', `client ${client.id}: already holds ${config.maxSubscriptions} subscriptions (maxSubscriptions); SUBACK 0x80`)
      return false
    }
    s.filters.add(filter)
    return true
  }
  broker.aedes.on('unsubscribe', (topics: string[], client: Client) => {
    const s = stateOf(client)
    if (s !== undefined) for (const t of topics) s.filters.delete(t)
  })

  // A consumer that does not read: its unsent bytes stop growing at
  // maxOutboundBytes, where it is disconnected instead (PERF-NOTES pitfall 5).
  const innerForward = hooks.allowForward
  hooks.allowForward = (client, packet) => {
    const s = stateOf(client)
    if (s !== undefined && (client.conn as Duplex).writableLength > config.maxOutboundBytes) {
      const conn = client.conn as Duplex
      if (!conn.destroyed) {
        counters.slowConsumers++
        limited.warn('slow-consumer', `client ${client.id}: more than ${config.maxOutboundBytes} bytes unsent (maxOutboundBytes); disconnected`)
        conn.destroy()
      }
      return false
    }
    return innerForward === undefined || innerForward(client, packet)
  }
}

export default fp(limitsPlugin, { name: 'rtw-limits', dependencies: ['rtw-broker'] })
