// This gateway as one node of a cluster (docs/CLUSTER.md). It tells the other
// nodes which request filters its responders hold [P-5.8], learns theirs, and
// carries replies to the node whose caller waits for them [P-5.9]. Requests
// and every other message travel through the broker's own routing
// (mqemitter-redis); this is only what Aedes does not do.
import type { Redis } from 'ioredis'
import { ClusterView, decodeSnapshot, encodeSnapshot, isNodeId, nodeOfId } from '../../core/cluster-view.js'
import { randomNodeId } from '../../core/correlator.js'
import type { ClusterPort } from '../../core/bridge.js'
import type { SubscriptionIndex } from '../../core/subscriptions.js'
import { REQ_PREFIX } from '../../core/topics.js'
import type { RedisLink } from './redis-link.js'

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

export interface ClusterCounters {
  repliesForwarded: number
  repliesReceived: number
  snapshotsSent: number
  nodesExpired: number
}

export class ClusterNode implements ClusterPort {
  readonly view: ClusterView
  readonly counters: ClusterCounters = { repliesForwarded: 0, repliesReceived: 0, snapshotsSent: 0, nodesExpired: 0 }
  private seq = 0
  private local: SubscriptionIndex<unknown> | undefined
  private onReply: (topic: string, payload: Buffer) => void = () => {}
  private heartbeat: NodeJS.Timeout | undefined
  private pending = false
  private closed = false

  private constructor (readonly id: string, readonly clusterId: string, readonly link: RedisLink) {
    this.view = new ClusterView(id, NODE_TTL_MS)
  }

  /** Joins the cluster under a node id no live node holds [P-5.1]. */
  static async join (link: RedisLink): Promise<ClusterNode> {
    // The cluster's own id, made by its first node: what its nodes share (the AMQP bridge's origin, docs/CLUSTER.md §5).
    await link.db.set(CLUSTER_ID, randomNodeId(), 'NX')
    const clusterId = await link.db.get(CLUSTER_ID) as string
    for (;;) {
      const id = randomNodeId()
      // NX: a clash with a live node (48 random bits) picks another id rather than share its replies.
      if (await link.db.set(nodeKey(id), String(process.pid), 'PX', NODE_TTL_MS, 'NX') === 'OK') return new ClusterNode(id, clusterId, link)
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
  stats (): { node: string, redis: string, nodes: string[], counters: ClusterCounters } {
    return { node: this.id, redis: this.link.state, nodes: this.view.nodes, counters: { ...this.counters } }
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
    this.link.db.set(nodeKey(this.id), String(process.pid), 'PX', NODE_TTL_MS).catch(() => {})
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
