// Which topic filters online clients hold, so the gateway can answer "nobody is
// listening" at once: 404 for a request with no responder [P-5.1], 202 for an
// HTTP publish with no subscriber. A trie keyed by topic level, with reference
// counts, because many clients may hold the same filter.

interface Node {
  children: Map<string, Node>
  count: number
}

function newNode (): Node {
  return { children: new Map(), count: 0 }
}

export class SubscriptionIndex<Owner> {
  private readonly root = newNode()
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
    node.count++
  }

  remove (owner: Owner, filter: string): void {
    const filters = this.owners.get(owner)
    if (filters === undefined || !filters.delete(filter)) return
    if (filters.size === 0) this.owners.delete(owner)
    this.unlink(this.root, filter.split('/'), 0)
  }

  removeOwner (owner: Owner): void {
    const filters = this.owners.get(owner)
    if (filters === undefined) return
    for (const filter of filters) this.unlink(this.root, filter.split('/'), 0)
    this.owners.delete(owner)
  }

  /** True when at least one held filter matches the topic name. */
  hasMatch (topic: string): boolean {
    const levels = topic.split('/')
    // [MQTT-4.7.2-1] wildcards at the first level do not match "$" topics.
    const dollar = topic.charCodeAt(0) === 36
    return this.match(this.root, levels, 0, dollar)
  }

  get size (): number {
    return this.owners.size
  }

  private match (node: Node, levels: string[], i: number, dollar: boolean): boolean {
    const wildOk = !(dollar && i === 0)
    if (wildOk) {
      const hash = node.children.get('#')
      if (hash !== undefined && hash.count > 0) return true
    }
    if (i === levels.length) return node.count > 0
    const exact = node.children.get(levels[i] as string)
    if (exact !== undefined && this.match(exact, levels, i + 1, dollar)) return true
    if (wildOk) {
      const plus = node.children.get('+')
      if (plus !== undefined && this.match(plus, levels, i + 1, dollar)) return true
    }
    return false
  }

  private unlink (node: Node, levels: string[], i: number): boolean {
    if (i === levels.length) {
      node.count--
    } else {
      const key = levels[i] as string
      const child = node.children.get(key)
      if (child !== undefined && this.unlink(child, levels, i + 1)) node.children.delete(key)
    }
    return node.count === 0 && node.children.size === 0
  }
}
