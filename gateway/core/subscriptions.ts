// Which topic filters online clients hold, so the gateway can answer "nobody is
// listening" at once: 404 for a request with no responder [P-5.1], 202 for an
// HTTP publish with no subscriber, and who they are, so the gateway's own
// requests can be delivered without a detour through the broker's router.
// A trie keyed by topic level; each filter's node holds the owners holding it.

interface Node<Owner> {
  children: Map<string, Node<Owner>>
  owners: Set<Owner>
}

function newNode<Owner> (): Node<Owner> {
  return { children: new Map(), owners: new Set() }
}

export class SubscriptionIndex<Owner> {
  private readonly root = newNode<Owner>()
  private readonly owners = new Map<Owner, Set<string>>()

  add (owner: Owner, filter: string): void {
    let filters = this.owners.get(owner)
    if (filters === undefined) {
      filters = new Set()
      this.owners.set(owner, filters)
    }
    if (filters.has(filter)) return
    filters.add(filter)
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
    this.unlink(this.root, filter.split('/'), 0, owner)
  }

  removeOwner (owner: Owner): void {
    const filters = this.owners.get(owner)
    if (filters === undefined) return
    for (const filter of filters) this.unlink(this.root, filter.split('/'), 0, owner)
    this.owners.delete(owner)
  }

  /** True when at least one held filter matches the topic name. */
  hasMatch (topic: string): boolean {
    const levels = topic.split('/')
    // [MQTT-4.7.2-1] wildcards at the first level do not match "$" topics.
    const dollar = topic.charCodeAt(0) === 36
    return this.match(this.root, levels, 0, dollar)
  }

  /**
   * Calls `fn` once for every held filter that matches the topic name, with
   * its owner: an owner holding two matching filters is called twice, as a
   * broker delivers a copy per matching subscription ([MQTT-3.3.5-1] allows it).
   */
  forEachMatch (topic: string, fn: (owner: Owner) => void): void {
    this.visit(this.root, topic.split('/'), 0, topic.charCodeAt(0) === 36, fn)
  }

  get size (): number {
    return this.owners.size
  }

  private visit (node: Node<Owner>, levels: string[], i: number, dollar: boolean, fn: (owner: Owner) => void): void {
    const wildOk = !(dollar && i === 0)
    if (wildOk) {
      const hash = node.children.get('#')
      if (hash !== undefined) for (const o of hash.owners) fn(o)
    }
    if (i === levels.length) {
      for (const o of node.owners) fn(o)
      return
    }
    const exact = node.children.get(levels[i] as string)
    if (exact !== undefined) this.visit(exact, levels, i + 1, dollar, fn)
    if (wildOk) {
      const plus = node.children.get('+')
      if (plus !== undefined) this.visit(plus, levels, i + 1, dollar, fn)
    }
  }

  private match (node: Node<Owner>, levels: string[], i: number, dollar: boolean): boolean {
    const wildOk = !(dollar && i === 0)
    if (wildOk) {
      const hash = node.children.get('#')
      if (hash !== undefined && hash.owners.size > 0) return true
    }
    if (i === levels.length) return node.owners.size > 0
    const exact = node.children.get(levels[i] as string)
    if (exact !== undefined && this.match(exact, levels, i + 1, dollar)) return true
    if (wildOk) {
      const plus = node.children.get('+')
      if (plus !== undefined && this.match(plus, levels, i + 1, dollar)) return true
    }
    return false
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
