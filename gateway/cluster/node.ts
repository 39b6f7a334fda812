// This gateway as one node of a cluster (docs/CLUSTER.md). It tells the other
// nodes which request filters its responders hold [P-5.8], learns theirs, and
// carries replies to the node whose caller waits for them [P-5.9]. Requests
// and every other message travel through the broker's own routing
// (mqemitter-redis); this is only what Aedes does not do.
import { hostname } from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { ClusterView, decodeSnapshot, encodeSnapshot, isNodeId, nodeOfId } from '../../core/cluster-view.js'
import { randomNodeId } from '../../core/correlator.js'
import type { ClusterPort } from '../../core/bridge.js'
import type { SubscriptionIndex } from '../../core/subscriptions.js'
import { REQ_PREFIX } from '../../core/topics.js'
import type { RedisLink } from './redis-link.js'
import type { NodeIdentity } from './identity.js'

/** Snapshots are re-sent this often, so a lost message is repaired within it. */
export const HEARTBEAT_MS = 1_000
/** A node not heard from for this long is gone: its responders no longer count [P-5.8]. */
export const NODE_TTL_MS = 3 * HEARTBEAT_MS

const SNAPSHOTS = 'rtw:responders'
const CLUSTER_ID = 'rtw:cluster:id'
const nodeKey = (id: string): string => `rtw:node:${id}`
const replyChannel = (id: string): string => `rtw:reply:${id}`

/** A forwarded reply: the topic's length (2 bytes), the topic, the payload. */
export function encodeForward (topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic, 'utf8')
  const head = Buffer.allocUnsafe(2)
  head.writeUInt16BE(t.length, 0)
  return Buffer.concat([head, t, payload])
}

export function decodeForward (frame: Buffer): { topic: string, payload: Buffer } | null {
  if (frame.length < 2) return null
  const n = frame.readUInt16BE(0)
  if (frame.length < 2 + n) return null
  return { topic: frame.toString('utf8', 2, 2 + n), payload: frame.subarray(2 + n) }
}

/** A live node holds this node's id: two nodes must not share one (their replies would cross). */
export class NodeIdTakenError extends Error {
  readonly code = 'RTW_NODE_ID_TAKEN'
}

export interface ClusterCounters {
  repliesForwarded: number
  repliesReceived: number
  snapshotsSent: number
  nodesExpired: number
}

export class ClusterNode implements ClusterPort {
  readonly view: ClusterView
  readonly counters: ClusterCounters = { repliesForwarded: 0, repliesReceived: 0, snapshotsSent: 0, nodesExpired: 0 }
  /** Told when the heartbeat finds another process holding this node's id (it expired meanwhile: a stall, or a split from Redis). */
  onIdConflict: (holder: string) => void = () => {}
  private seq = 0
  private local: SubscriptionIndex<unknown> | undefined
  private onReply: (topic: string, payload: Buffer) => void = () => {}
  private heartbeat: NodeJS.Timeout | undefined
  private pending = false
  private closed = false

  private constructor (readonly identity: NodeIdentity, readonly clusterId: string, readonly link: RedisLink, private readonly holder: string) {
    this.view = new ClusterView(identity.id, NODE_TTL_MS)
  }

  /** The node id: its correlation ids start with it, and replies for its callers are sent to it [P-5.9]. */
  get id (): string {
    return this.identity.id
  }

  /** The prefix of this node's correlation ids: its id, then its boot epoch [P-5.1]. */
  get idPrefix (): string {
    return this.identity.id + this.identity.epoch
  }

  /**
   * Joins the cluster under the node's id, once no live node holds it [P-5.1].
   * The key of a node killed a moment ago (this node's previous life, say)
   * expires within NODE_TTL_MS, so the claim is retried a little longer than
   * that; a key still renewed after it belongs to a live node, and the node
   * does not start.
   */
  static async join (link: RedisLink, identity: NodeIdentity, waitMs = NODE_TTL_MS + HEARTBEAT_MS): Promise<ClusterNode> {
    // The cluster's own id, made by its first node: what its nodes share (the AMQP bridge's origin, docs/CLUSTER.md §5).
    await link.db.set(CLUSTER_ID, randomNodeId(), 'NX')
    const clusterId = await link.db.get(CLUSTER_ID) as string
    // Names this life of the node: the heartbeat tells its own key from another process's.
    const holder = `${identity.name} (pid ${process.pid} on ${hostname()}, epoch ${identity.epoch})`
    const deadline = Date.now() + waitMs
    for (;;) {
      if (await link.db.set(nodeKey(identity.id), holder, 'PX', NODE_TTL_MS, 'NX') === 'OK') return new ClusterNode(identity, clusterId, link, holder)
      if (Date.now() >= deadline) {
        const other = await link.db.get(nodeKey(identity.id)) ?? 'a node that just left'
        throw new NodeIdTakenError(`node id ${JSON.stringify(identity.name)} (${identity.id}) is held by a live node of this cluster: ${other}. ` +
          'Give each node its own RTW_NODE_ID (by default it is <hostname>:<httpPort>)')
      }
      await delay(200)
    }
  }

  /** Starts following the local responders and the other nodes; replies for this node's callers go to onReply. */
  async start (local: SubscriptionIndex<unknown>, onReply: (topic: string, payload: Buffer) => void): Promise<void> {
    this.local = local
    this.onReply = onReply
    const sub: Redis = this.link.cluster
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel.toString('utf8'), message))
    await sub.subscribe(SNAPSHOTS, replyChannel(this.id))
    local.watch(REQ_PREFIX, () => this.scheduleSnapshot())
    this.link.on('down', () => this.view.clear())
    this.link.on('up', () => { this.resync().catch(() => {}) })
    await this.resync()
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  /** For /stats: this node, the live nodes it knows, and what it forwarded. */
  stats (): { node: string, name: string, epoch: string, redis: string, nodes: string[], counters: ClusterCounters } {
    return { node: this.id, name: this.identity.name, epoch: this.identity.epoch, redis: this.link.state, nodes: this.view.nodes, counters: { ...this.counters } }
  }

  hasRemoteResponder (topic: string): boolean {
    return this.view.hasMatch(topic)
  }

  forwardReply (id: string, topic: string, payload: Buffer): boolean {
    const node = nodeOfId(id)
    if (!this.view.isLive(node) || this.link.pub.status !== 'ready') return false
    this.counters.repliesForwarded++
    this.link.pub.publish(replyChannel(node), encodeForward(topic, payload)).catch(() => {})
    return true
  }

  private onMessage (channel: string, message: Buffer): void {
    if (channel === SNAPSHOTS) {
      const s = decodeSnapshot(message.toString('utf8'))
      if (s !== null) this.view.apply(s, Date.now())
      return
    }
    const fwd = decodeForward(message)
    if (fwd === null) return
    this.counters.repliesReceived++
    this.onReply(fwd.topic, fwd.payload)
  }

  /** Reads every live node's last snapshot (at start, and after Redis came back) and sends ours. */
  private async resync (): Promise<void> {
    const all = await this.link.db.hgetall(SNAPSHOTS)
    const now = Date.now()
    const ids = Object.keys(all).filter(isNodeId)
    const alive = ids.length === 0 ? [] : await this.link.db.mget(...ids.map(nodeKey))
    const dead: string[] = []
    ids.forEach((node, i) => {
      const s = decodeSnapshot(all[node] as string)
      if (alive[i] === null || s === null) dead.push(node)
      else this.view.apply(s, now)
    })
    if (dead.length > 0) await this.link.db.hdel(SNAPSHOTS, ...dead)
    this.sendSnapshot()
  }

  private scheduleSnapshot (): void {
    if (this.pending) return
    this.pending = true
    // Changes in one turn (a responder subscribing to ten filters) go out as one snapshot.
    setImmediate(() => {
      this.pending = false
      this.sendSnapshot()
    })
  }

  private sendSnapshot (gone = false): void {
    if (this.closed || this.link.pub.status !== 'ready') return
    const text = encodeSnapshot({ node: this.id, seq: this.seq++, filters: this.local?.watchedFilters() ?? [], ...(gone ? { gone: true as const } : {}) })
    this.counters.snapshotsSent++
    this.link.pub.publish(SNAPSHOTS, text).catch(() => {})
    if (gone) this.link.db.hdel(SNAPSHOTS, this.id).catch(() => {})
    else this.link.db.hset(SNAPSHOTS, this.id, text).catch(() => {})
  }

  private beat (): void {
    if (!this.link.up) return
    this.link.db.set(nodeKey(this.id), this.holder, 'PX', NODE_TTL_MS, 'GET').then(before => {
      if (before !== null && before !== this.holder) this.onIdConflict(before)
    }, () => {})
    // Puts the cluster's id back should Redis have restarted empty, so that a node joining then gets the same one.
    this.link.db.set(CLUSTER_ID, this.clusterId, 'NX').catch(() => {})
    this.sendSnapshot()
    this.counters.nodesExpired += this.view.prune(Date.now()).length
  }

  /** Leaves the cluster: the others forget this node's responders now rather than after NODE_TTL_MS. */
  async leave (): Promise<void> {
    if (this.closed) return
    clearInterval(this.heartbeat)
    this.sendSnapshot(true)
    this.closed = true
    if (this.link.db.status === 'ready') await this.link.db.del(nodeKey(this.id)).catch(() => {})
  }
}
