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
import { guardConnection } from '../../broker/packet-guard.js'
import { clientAddress } from '../../core/client-address.js'
import { KeyedRateLimiter, TokenBucket } from '../../core/rate-limit.js'
import { REQ_PREFIX } from '../../core/topics.js'
import { namespaceOf } from '../../core/namespaces.js'
import { LogLimiter } from '../log-limit.js'

export type { LimitCounters }

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

async function limitsPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const broker = app.broker
  const limited = new LogLimiter(app.log)
  const counters: LimitCounters = broker.counters.limits
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

  // The per-PUBLISH and per-delivery checks are O(1) and allocate nothing.
  app.stages.limits = {
    name: 'limits',
    accept (conn, req) {
      // Over WebSocket, the address the upgrade was admitted under; MQTT over TCP has no headers.
      const address = req !== undefined ? addressOf(req) : (conn as Duplex & { remoteAddress?: string }).remoteAddress
      // WebSocket upgrades were admitted (or answered 429) before the handshake.
      if (req === undefined && !admitConnection(address)) return false
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
      return true
    },

    // [MQTT-3.3.5-2] lets a server acknowledge a PUBLISH it will not deliver. Over
    // the rate, a publish is acknowledged (Aedes sent PUBACK already) and dropped:
    // a bursty client keeps its connection and subscriptions, and only the excess is lost.
    // Replies on $res/… are not counted: the gateway consumes them (no fan-out), each
    // answers a request it made, and a responder serves as many as its callers send.
    publish (client, packet) {
      const s = stateOf(client)
      if (s === undefined || (packet.topic.charCodeAt(0) === 36 && !namespaceOf(packet.topic).rateLimited) || s.bucket.take(Date.now())) return false
      counters.publishesDropped++
      limited.warn('publish-rate', `client ${client.id}: more than ${config.publishRate} publishes per second (publishRate); dropped`)
      // A dropped request would leave its caller waiting for the timeout; say 429 in its inbox instead [P-12.2].
      if (packet.topic.startsWith(REQ_PREFIX)) app.bridge.refuseCaller(client.id, packet.payload as Buffer, 'RTW_TOO_MANY_REQUESTS')
      return true
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
    // maxOutboundBytes, where it is disconnected instead.
    deliver (client) {
      const s = stateOf(client)
      if (s === undefined || (client.conn as Duplex).writableLength <= config.maxOutboundBytes) return true
      const conn = client.conn as Duplex
      if (!conn.destroyed) {
        counters.slowConsumers++
        limited.warn('slow-consumer', `client ${client.id}: more than ${config.maxOutboundBytes} bytes unsent (maxOutboundBytes); disconnected`)
        conn.destroy()
      }
      return false
    }
  } satisfies Stage
}

export default fp(limitsPlugin, { name: 'rtw-limits', dependencies: ['rtw-broker'] })
