// Per-connection MQTT limits (README "Limits"): packet size, connection rate
// per remote address, publish rate, subscriptions per client, and the outbound
// buffer of slow consumers; together, the broker pipeline's `limits` stage.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Client, Stage } from '../../broker/broker.js'
import type { LimitCounters } from '../../broker/counters.js'
import { raiseWriteHighWater } from '../../broker/internals.js'
import { unsentBytes } from '../../net/write-batch.js'
import { guardConnection } from '../../broker/packet-guard.js'
import { clientAddress } from '../../core/client-address.js'
import { KeyedRateLimiter, TokenBucket } from '../../core/rate-limit.js'
import { namespaceOf } from '../../core/namespaces.js'
import { LogLimiter } from '../log-limit.js'

export type { LimitCounters }

/**
 * The hard bound of connectRate: a new connection waits for its turn at most
 * this long, and one that would wait longer is refused (README "Limits").
 * Below MQTT.js's and mosquitto's default connect timeouts (30 s).
 */
export const CONNECT_WAIT_MAX_MS = 20_000

export interface Limits {
  readonly counters: LimitCounters
  /**
   * Reserves a connection's turn for a remote address: 0 to go on now, the ms
   * to wait first when it connects faster than connectRate, or -1 to refuse
   * it (it would wait more than CONNECT_WAIT_MAX_MS).
   */
  admitConnection: (address: string | undefined) => number
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

async function limitsPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const broker = app.broker
  const limited = new LogLimiter(app.log)
  const counters: LimitCounters = broker.counters.limits
  const connectRate = new KeyedRateLimiter(config.connectRate, config.connectRate)

  const admitConnection = (address: string | undefined): number => {
    const wait = connectRate.reserve(address ?? '?', Date.now(), CONNECT_WAIT_MAX_MS)
    if (wait > 0) {
      counters.connectionsDelayed++
      limited.warn('connect-wait', `${address ?? '?'}: more than ${config.connectRate} new connections per second (connectRate); waiting for their turn`)
    }
    if (wait >= 0) return wait
    counters.connectionsRefused++
    limited.warn('connect-rate', `${address ?? '?'}: so many new connections that this one would wait more than ${CONNECT_WAIT_MAX_MS / 1000} s for connectRate (${config.connectRate}/s); refused`)
    return -1
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

  // The per-PUBLISH and per-delivery checks are O(1) and allocate nothing.
  app.stages.limits = {
    name: 'limits',
    accept (conn, req) {
      // Over WebSocket, the address the upgrade was admitted under; MQTT over TCP has no headers.
      const address = req !== undefined ? addressOf(req) : (conn as Duplex & { remoteAddress?: string }).remoteAddress
      // WebSocket upgrades waited for their turn (or were answered 429) before the handshake.
      const wait = req === undefined ? admitConnection(address) : 0
      if (wait < 0) return false
      // A TCP socket, or the upgraded socket of a WebSocket (broker/ws-stream.ts).
      // Below the outbound limit Aedes then never waits for 'drain' (which would
      // hold one of its routing slots per message); above it the client is
      // disconnected (deliver below).
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
          broker.refused(null, `${address ?? '?'}: ${v.reason}; disconnected`)
        } else {
          limited.warn('protocol-level', `${address ?? '?'}: CONNECT with unsupported protocol level ${v.level}; CONNACK 0x01 [MQTT-3.1.2-2]`)
        }
      })
      ;(conn as Tagged)[STATE] = {
        bucket: new TokenBucket(config.publishRate, config.publishRate, Date.now()),
        filters: new Set()
      }
      return wait
    },

    // Over the rate, a client's publishes wait for the bucket to refill, and
    // its connection is not read meanwhile: the sender is slowed down, and
    // nothing it sent is dropped. Replies on $res/… do not count
    // (core/namespaces.ts): each answers a request the gateway made.
    throttle (client, packet) {
      const s = stateOf(client)
      if (s === undefined || (packet.topic.charCodeAt(0) === 36 && !namespaceOf(packet.topic).rateLimited)) return 0
      const wait = s.bucket.takeOrWait(Date.now())
      if (wait > 0) limited.warn('publish-rate', `client ${client.id}: more than ${config.publishRate} publishes per second (publishRate); read more slowly`)
      return wait
    },

    subscribe (client, filter) {
      const s = stateOf(client)
      if (s === undefined || s.filters.has(filter)) return true
      if (s.filters.size >= config.maxSubscriptions) {
        counters.subscriptionsRefused++
        limited.warn('max-subscriptions', `client ${client.id}: already holds ${config.maxSubscriptions} subscriptions (maxSubscriptions); SUBACK 0x80`)
        return false
      }
      s.filters.add(filter)
      return true
    },

    unsubscribe (client, filters) {
      const s = stateOf(client)
      if (s !== undefined) for (const t of filters) s.filters.delete(t)
    },

    // A consumer that does not read: its unsent bytes stop growing at
    // maxOutboundBytes, where it is disconnected instead. They count what this
    // turn's batch has gathered: the write high-water mark is the same bound,
    // so a consumer at it already waits for 'drain', and only a delivery seen
    // here can end that wait before Aedes's drainTimeout.
    // [P-12.5]
    deliver (client) {
      const s = stateOf(client)
      if (s === undefined || unsentBytes(client.conn as Duplex) < config.maxOutboundBytes) return true
      const conn = client.conn as Duplex
      if (!conn.destroyed) {
        counters.slowConsumers++
        limited.warn('slow-consumer', `client ${client.id}: ${config.maxOutboundBytes} bytes or more unsent (maxOutboundBytes); disconnected`)
        conn.destroy()
      }
      return false
    }
  } satisfies Stage
}

export default fp(limitsPlugin, { name: 'rtw-limits', dependencies: ['rtw-broker'] })
