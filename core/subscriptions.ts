// Which topic filters online clients hold, so the gateway can answer "nobody is
// listening" at once: 404 for a request with no responder [P-5.1], 202 for an
// HTTP publish with no subscriber, and who they are, so the gateway's own
// requests can be delivered without a detour through the broker's router.
// A trie keyed by topic level; each filter's node holds the owners holding it.
// Every REST request asks twice about the same topic (is anyone listening,
// then who), so answers are kept per topic name until the filters change.

interface Node<Owner> {
  children: Map<string, Node<Owner>>
  owners: Set<Owner>
}

function newNode<Owner> (): Node<Owner> {
  return { children: new Map(), owners: new Set() }
}

/** Topic names whose matches are remembered; past it the memory starts over, so unique topics cannot grow it. */
const MEMO_SIZE = 1024

export class SubscriptionIndex<Owner> {
  private readonly root = newNode<Owner>()
  private readonly owners = new Map<Owner, Set<string>>()
  /** Owners matching a topic name, one entry per matching filter; emptied on every change to the filters. */
  private readonly memo = new Map<string, readonly Owner[]>()
  private watched: { prefix: string, holders: Map<string, number>, onChange: (filter: string, held: boolean) => void } | undefined

  /**
   * Calls onChange when a filter starting with `prefix` gets its first owner
   * (held) or loses its last one: what a cluster tells the other nodes about
   * its responders [P-5.8]. One watcher per index.
   */
  watch (prefix: string, onChange: (filter: string, held: boolean) => void): void {
    this.watched = { prefix, holders: new Map(), onChange }
    for (const filters of this.owners.values()) for (const f of filters) this.count(f, 1)
  }

  /** The filters starting with the watched prefix that some owner holds. */
  watchedFilters (): string[] {
    return this.watched === undefined ? [] : [...this.watched.holders.keys()]
  }

  private count (filter: string, delta: 1 | -1): void {
    const w = this.watched
    if (w === undefined || !filter.startsWith(w.prefix)) return
    const n = (w.holders.get(filter) ?? 0) + delta
    if (n > 0) w.holders.set(filter, n)
    else w.holders.delete(filter)
    if (n === (delta === 1 ? 1 : 0)) w.onChange(filter, delta === 1)
  }

  add (owner: Owner, filter: string): void {
    let filters = this.owners.get(owner)
    if (filters === undefined) {
      filters = new Set()
      this.owners.set(owner, filters)
    }
    if (filters.has(filter)) return
    filters.add(filter)
    this.memo.clear()
    this.count(filter, 1)
    let node = this.root
    for (const level of filter.split('/')) {
      let next = node.children.get(level)
      if (next === undefined) {
        next = newNode()
        node.children.set(level, next)
      }
      node = next
    }
    node.owners.add(owner)
  }

  remove (owner: Owner, filter: string): void {
    const filters = this.owners.get(owner)
    if (filters === undefined || !filters.delete(filter)) return
    if (filters.size === 0) this.owners.delete(owner)
    this.memo.clear()
    this.unlink(this.root, filter.split('/'), 0, owner)
    this.count(filter, -1)
  }

  removeOwner (owner: Owner): void {
    const filters = this.owners.get(owner)
    if (filters === undefined) return
    this.owners.delete(owner)
    this.memo.clear()
    for (const filter of filters) {
      this.unlink(this.root, filter.split('/'), 0, owner)
      this.count(filter, -1)
    }
  }

  /**
   * True when some held filter starts with this literal first level: no other
   * filter can match a topic under a "$" level [MQTT-4.7.2-1], so it answers
   * "could anyone want `$history/…`" without building the topic or walking the trie.
   */
  holdsFirstLevel (level: string): boolean {
    return this.root.children.has(level)
  }

  /** True when at least one held filter matches the topic name. */
  hasMatch (topic: string): boolean {
    return this.matches(topic).length > 0
  }

  /**
   * Calls `fn` once for every held filter that matches the topic name, with
   * its owner: an owner holding two matching filters is called twice, as a
   * broker delivers a copy per matching subscription ([MQTT-3.3.5-1] allows it).
   * `fn` may change the filters: it walks the matches as they were when called.
   */
  forEachMatch (topic: string, fn: (owner: Owner) => void): void {
    for (const owner of this.matches(topic)) fn(owner)
  }

  private matches (topic: string): readonly Owner[] {
    const known = this.memo.get(topic)
    if (known !== undefined) return known
    const found: Owner[] = []
    // [MQTT-4.7.2-1] wildcards at the first level do not match "$" topics.
    this.visit(this.root, topic.split('/'), 0, topic.charCodeAt(0) === 36, found)
    if (this.memo.size >= MEMO_SIZE) this.memo.clear()
    this.memo.set(topic, found)
    return found
  }

  get size (): number {
    return this.owners.size
  }

  /** Filters held, all owners together: counted when asked (a scrape), not kept up to date per change. */
  get filterCount (): number {
    let n = 0
    for (const filters of this.owners.values()) n += filters.size
    return n
  }

  private visit (node: Node<Owner>, levels: string[], i: number, dollar: boolean, found: Owner[]): void {
    const wildOk = !(dollar && i === 0)
    if (wildOk) {
      const hash = node.children.get('#')
      if (hash !== undefined) for (const o of hash.owners) found.push(o)
    }
    if (i === levels.length) {
      for (const o of node.owners) found.push(o)
      return
    }
    const exact = node.children.get(levels[i] as string)
    if (exact !== undefined) this.visit(exact, levels, i + 1, dollar, found)
    if (wildOk) {
      const plus = node.children.get('+')
      if (plus !== undefined) this.visit(plus, levels, i + 1, dollar, found)
    }
  }

  private unlink (node: Node<Owner>, levels: string[], i: number, owner: Owner): boolean {
    if (i === levels.length) {
      node.owners.delete(owner)
    } else {
      const key = levels[i] as string
      const child = node.children.get(key)
      if (child !== undefined && this.unlink(child, levels, i + 1, owner)) node.children.delete(key)
    }
    return node.owners.size === 0 && node.children.size === 0
  }
}
