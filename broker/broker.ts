// The embedded MQTT broker: Aedes adapted to the pipeline (aedes-adapter.ts),
// its listeners (listeners.ts) and the fast lanes (fast-lanes.ts), put
// together. docs/ARCHITECTURE.md draws the whole.
import type { AddressInfo } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes, AedesOptions, Client, PublishPacket } from 'aedes'
import type { SubscriptionIndex } from '../core/subscriptions.js'
import { REQ_PREFIX } from '../core/topics.js'
import type { TopicLimits } from '../core/conformance.js'
import { adaptAedes } from './aedes-adapter.js'
import { tcpListener } from './listeners.js'
import { OwnRequestLane, tapRepliesOf } from './fast-lanes.js'
import { beforeEachPacket, checkInternals, frameQoS0Deliveries, conformRetainedDelivery, retainedStream } from './internals.js'
import { capFilterDepth } from '../core/conformance.js'
import { compose, type Pipeline, type Stage } from './pipeline.js'
import { newCounters, type Counters } from './counters.js'

export type { Client, PublishPacket }
export type { Stage }

export interface BrokerOptions {
  /** Disconnect a subscriber whose socket has not drained for this long (Aedes drainTimeout). */
  drainTimeoutMs?: number
  /**
   * Messages Aedes routes at once. Each waits for its subscribers' sockets, so
   * a low value lets one slow socket stall everyone's routing.
   */
  concurrency?: number
  /** Longest topic and most levels: a PUBLISH over them closes the connection, a SUBSCRIBE gets 0x80. */
  topicLimits?: TopicLimits
  /** PEM certificate and key: listenTcp then serves mqtts. */
  tls?: { cert: Buffer, key: Buffer }
  /** Aedes's persistence (retained messages, sessions); in memory when absent. */
  persistence?: AedesOptions['persistence']
  /** Aedes's message router; a shared one (mqemitter-redis) joins several nodes. */
  mq?: AedesOptions['mq']
  /**
   * Route the gateway's own QoS 0 requests past Aedes's router, to this
   * node's subscribers only (fast-lanes.ts). Defaults to true without `mq`
   * and false with one, where a responder may be on another node.
   */
  ownRequestLane?: boolean
  /**
   * Acknowledge a QoS 1 PUBLISH only once it was routed, and so stored: for a
   * persistence that outlives the process (backends.ts), so that kill -9 loses
   * nothing that was acknowledged.
   */
  ackAfterStore?: boolean
  /** A refused packet or connection, already counted; for the rate-limited log. */
  onRefused?: (client: Client | null, what: string) => void
}

export interface Broker {
  readonly aedes: Aedes
  /** Filters held by this node's connected clients, for "is anyone listening" answers. */
  readonly subscriptions: SubscriptionIndex<Client>
  /** Everything the broker counts (counters.ts), for /stats, metrics and $SYS. */
  readonly counters: Counters
  /** The pipeline in force (pipeline.ts). */
  readonly pipeline: Pipeline
  /** Puts these stages in force, in this order (gateway/pipeline.ts declares them). */
  use: (stages: readonly Stage[]) => void
  /** Every refusal (the broker's conformance checks, a connection's packet guard) goes here: counted, then logged. */
  refused: (client: Client | null, what: string) => void
  /** Serves one MQTT connection (a TCP socket or a WebSocket duplex). */
  handle: (conn: Duplex, req?: IncomingMessage) => void
  listenTcp: (port: number, host: string) => Promise<AddressInfo>
  /** Publishes on behalf of the gateway, bypassing authorizePublish. */
  publish: (topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, cb: (err?: Error | null) => void) => void
  /** The retained message on exactly this topic, if any. */
  readRetained: (topic: string) => Promise<{ payload: Buffer, qos: number } | null>
  close: () => Promise<void>
}

export async function createBroker (opts: BrokerOptions = {}): Promise<Broker> {
  const counters = newCounters()
  let pipeline = compose([])
  const current = (): Pipeline => pipeline
  const onRefused = opts.onRefused ?? (() => {})
  const refused = (client: Client | null, what: string): void => {
    counters.refused++
    onRefused(client, what)
  }
  // Aedes's own ceiling (qlobber's max_words) when no limit is configured.
  const topicLimits: TopicLimits = opts.topicLimits ?? { maxTopicLength: 65_535, maxTopicLevels: 100 }

  const { aedes, subscriptions, route } = await adaptAedes({
    concurrency: opts.concurrency ?? 1000,
    drainTimeoutMs: opts.drainTimeoutMs ?? 10_000,
    topicLimits,
    persistence: opts.persistence,
    mq: opts.mq,
    ackAfterStore: opts.ackAfterStore,
    counters,
    pipeline: current,
    refused: (client, what) => broker.refused(client, what)
  })
  const problems = checkInternals(aedes)
  if (problems.length > 0) {
    await new Promise<void>(resolve => aedes.close(() => resolve()))
    throw new Error(`This Aedes version lacks what broker/internals.ts reads: ${problems.join(', ')}. Install the version package.json pins.`)
  }
  conformRetainedDelivery(aedes)

  const ownRequests = (opts.ownRequestLane ?? opts.mq === undefined) ? new OwnRequestLane(subscriptions, current, counters) : undefined

  const serve = (conn: Duplex, req?: IncomingMessage): void => {
    if (conn.destroyed) return
    if (req === undefined) counters.connections.tcp++
    else counters.connections.ws++
    // Not `req`: Aedes would keep it as client.req for the connection's whole
    // life (headers, raw headers, a stream state: ~1.5 KiB per idle WebSocket),
    // and no stage reads it after accept.
    const client = aedes.handle(conn)
    // [P-12.3] a filter Aedes would close the connection for (over its 100 levels) gets SUBACK 0x80 instead.
    beforeEachPacket(client, capFilterDepth)
    frameQoS0Deliveries(client)
    tapRepliesOf(client, conn, topicLimits, counters, route)
  }
  const handle = (conn: Duplex, req?: IncomingMessage): void => {
    const wait = pipeline.accept(conn, req)
    if (wait === false) conn.destroy()
    // Unread meanwhile: the CONNECT waits in the socket, and Aedes's connect timeout has not started.
    else if (wait > 0) {
      // A peer that resets the connection meanwhile must not crash the process; Aedes listens later.
      conn.on('error', ignore)
      setTimeout(serve, wait, conn, req).unref()
    }
    else serve(conn, req)
  }

  const listener = tcpListener({
    tls: opts.tls,
    onConnection: conn => handle(conn),
    onTlsError: err => broker.refused(null, `TLS handshake failed: ${err.message}`)
  })

  const broker: Broker = {
    aedes,
    subscriptions,
    counters,
    get pipeline () { return pipeline },
    use (stages) { pipeline = compose(stages) },
    refused,
    handle,
    listenTcp: (port, host) => listener.listen(port, host),
    publish (topic, payload, qos, retain, cb) {
      if (ownRequests !== undefined && qos === 0 && !retain && topic.startsWith(REQ_PREFIX)) {
        ownRequests.send(topic, payload)
        cb(null)
        return
      }
      aedes.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, cb)
    },
    async readRetained (topic) {
      for await (const packet of retainedStream(aedes, topic)) {
        if (packet.topic === topic) return { payload: Buffer.from(packet.payload), qos: packet.qos }
      }
      return null
    },
    close: () => listener.close(() => new Promise<void>(resolve => aedes.close(() => resolve())))
  }
  return broker
}

function ignore (): void {}
