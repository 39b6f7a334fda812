// What one node knows of the others in a cluster (docs/CLUSTER.md): which
// request filters their connected responders hold, so that "no responder" is
// still answered at once, from a cluster-wide view [P-5.8]. No I/O: the
// cluster plugin feeds it the snapshots the nodes publish through Redis.
import { SubscriptionIndex } from './subscriptions.js'
import { NODE_ID_LENGTH } from './correlator.js'

/** One node's responders, as it publishes them on every change and every heartbeat. */
export interface NodeSnapshot {
  node: string
  /** Increases with every snapshot the node sends, so an older one never replaces a newer one. */
  seq: number
  /** The `$req/…` filters held by at least one of its connected clients. */
  filters: string[]
  /** The node is leaving (graceful stop): forget it now rather than after the TTL. */
  gone?: true
}

const NODE_ID = /^[A-Za-z0-9_-]+$/

/** True for a node id as nodes make them: a correlation-id prefix [P-5.1]. */
export function isNodeId (s: string): boolean {
  return s.length === NODE_ID_LENGTH && NODE_ID.test(s)
}

/** The node a correlation id names [P-5.9]: its prefix, whoever made it. */
export function nodeOfId (id: string): string {
  return id.slice(0, NODE_ID_LENGTH)
}

export function encodeSnapshot (s: NodeSnapshot): string {
  return JSON.stringify(s)
}

/** A snapshot from the wire, or null when it is not one (another version, or garbage). */
export function decodeSnapshot (text: string): NodeSnapshot | null {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  if (typeof o.node !== 'string' || !isNodeId(o.node)) return null
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return null
  if (!Array.isArray(o.filters) || !o.filters.every(f => typeof f === 'string' && f.startsWith('$req/'))) return null
  return { node: o.node, seq: o.seq, filters: o.filters as string[], ...(o.gone === true ? { gone: true as const } : {}) }
}

interface Known {
  seq: number
  filters: Set<string>
  seenAt: number
}

export class ClusterView {
  private readonly index = new SubscriptionIndex<string>()
  private readonly known = new Map<string, Known>()

  /**
   * @param self this node's id: its own snapshots are ignored.
   * @param ttlMs a node not heard from for this long is taken as gone (killed, or cut off from Redis).
   */
  constructor (private readonly self: string, private readonly ttlMs: number) {}

  /** Takes a node's snapshot seen at `now`. Returns true when what the view answers changed. */
  apply (s: NodeSnapshot, now: number): boolean {
    if (s.node === this.self) return false
    const known = this.known.get(s.node)
    if (known !== undefined && s.seq < known.seq) return false
    if (s.gone === true) return this.forget(s.node)
    if (known === undefined) {
      const filters = new Set(s.filters)
      this.known.set(s.node, { seq: s.seq, filters, seenAt: now })
      for (const f of filters) this.index.add(s.node, f)
      return filters.size > 0
    }
    known.seq = s.seq
    known.seenAt = now
    const next = new Set(s.filters)
    let changed = false
    for (const f of known.filters) {
      if (!next.has(f)) { this.index.remove(s.node, f); changed = true }
    }
    for (const f of next) {
      if (!known.filters.has(f)) { this.index.add(s.node, f); changed = true }
    }
    known.filters = next
    return changed
  }

  /** Forgets the nodes not heard from within the TTL; returns their ids. */
  prune (now: number): string[] {
    const gone: string[] = []
    for (const [node, k] of this.known) {
      if (now - k.seenAt > this.ttlMs) gone.push(node)
    }
    for (const node of gone) this.forget(node)
    return gone
  }

  /** Forgets every node: while this node cannot reach Redis it cannot reach them either. */
  clear (): void {
    for (const node of [...this.known.keys()]) this.forget(node)
  }

  /** True when a responder on another live node holds a filter matching the topic. */
  hasMatch (topic: string): boolean {
    return this.index.hasMatch(topic)
  }

  isLive (node: string): boolean {
    return this.known.has(node)
  }

  get nodes (): string[] {
    return [...this.known.keys()]
  }

  private forget (node: string): boolean {
    const k = this.known.get(node)
    if (k === undefined) return false
    this.known.delete(node)
    this.index.removeOwner(node)
    return k.filters.size > 0
  }
}
