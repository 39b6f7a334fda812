// The fast lanes: the two paths on which the gateway's own traffic skips parts
// of Aedes, because those parts were most of the cost of a REST request
// (docs/ARCHITECTURE.md "Fast lanes"). Each gives what Aedes would give, and
// each can be shut: with a shared `mq` (several nodes), own-request routing
// steps aside, since it sees only this node's subscribers.
import type { Duplex } from 'node:stream'
import type { Client, PublishPacket } from 'aedes'
import type { SubscriptionIndex } from '../core/subscriptions.js'
import { checkTopic, type TopicLimits } from '../core/conformance.js'
import { flushNow } from '../net/write-batch.js'
import { qos0PublishFrame } from './publish-frame.js'
import { tapReplies } from './reply-tap.js'
import { readyForReplies, refreshKeepalive } from './internals.js'
import type { Pipeline } from './pipeline.js'
import type { Counters } from './counters.js'

type Route = (packet: PublishPacket, client: Client | null, done: (err?: Error | null) => void) => void

/**
 * Replies in the fast lane (reply-tap.ts): a QoS 0 `$res/…` PUBLISH of a
 * connected client, sliced out of the socket read, gets what Aedes would give
 * it: the checks of its handlePublish and of authorizePublish, the keep-alive
 * refresh, then the pipeline's publish stages like any other. One that fails
 * a check is left to Aedes, which refuses it as before.
 */
export function tapRepliesOf (client: Client, conn: Duplex, limits: TopicLimits, counters: Counters, route: Route): void {
  tapReplies(conn, () => readyForReplies(client), (topic, payload) => {
    if (topic.includes('+') || topic.includes('#') || checkTopic(topic, limits) !== null) return false
    refreshKeepalive(client)
    counters.received[0]++
    route({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket, client, noop)
    return true
  })
}

/**
 * The gateway's own QoS 0 requests skip Aedes's router, which spends two
 * setImmediate hops, two packet copies, a series of callbacks and a topic
 * match of its own on each message (measured: ~5% of the gateway's CPU per
 * REST request). Nothing is lost by it: QoS 0 is never stored for offline
 * sessions, a request is never retained [P-2.4], and the pipeline's delivery
 * and observer stages still see each one. Requests still wait for the next
 * turn of the event loop and go out together, as Aedes's did: written one by
 * one as they come, they made smaller socket writes and cost more.
 */
export class OwnRequestLane {
  private queued: Array<{ topic: string, payload: Buffer }> = []

  constructor (
    private readonly subscriptions: SubscriptionIndex<Client>,
    private readonly pipeline: () => Pipeline,
    private readonly counters: Counters
  ) {}

  send (topic: string, payload: Buffer): void {
    if (this.queued.push({ topic, payload }) === 1) setImmediate(() => this.deliverQueued())
  }

  private deliverQueued (): void {
    const batch = this.queued
    this.queued = []
    const { deliver, published } = this.pipeline()
    const written = new Set<Duplex>()
    for (const { topic, payload } of batch) {
      const packet = { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket
      let frame: Buffer | undefined
      this.subscriptions.forEachMatch(topic, client => {
        if (!client.connected || client.conn.destroyed || client.conn.writableEnded) return
        if (deliver !== undefined && !deliver(client, packet)) return
        frame ??= qos0PublishFrame(topic, payload)
        client.conn.write(frame)
        this.counters.sent[0]++
        written.add(client.conn)
      })
      published?.(packet, null)
    }
    // This is already the turn's batch: send it now, not a whole loop turn later.
    for (const conn of written) flushNow(conn)
  }
}

function noop (): void {}
