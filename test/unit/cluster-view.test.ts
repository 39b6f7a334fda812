// The cluster-wide view of responders [P-5.8] and the node ids in correlation ids [P-5.9].
import { describe, expect, it } from 'vitest'
import { ClusterView, decodeSnapshot, encodeSnapshot, isNodeId, nodeOfId } from '../../core/cluster-view.js'
import { Correlator, randomNodeId } from '../../core/correlator.js'
import { SubscriptionIndex } from '../../core/subscriptions.js'

const A = 'nodeAAAA'
const B = 'nodeBBBB'
const SELF = 'selfSELF'

describe('ClusterView', () => {
  it('answers from the snapshots of other nodes, never from its own', () => {
    const view = new ClusterView(SELF, 3000)
    expect(view.apply({ node: SELF, seq: 0, filters: ['$req/own/#'] }, 0)).toBe(false)
    expect(view.hasMatch('$req/own/x')).toBe(false)
    expect(view.apply({ node: A, seq: 0, filters: ['$req/echo/#', '$req/dev/+/get'] }, 0)).toBe(true)
    expect(view.hasMatch('$req/echo/a/b')).toBe(true)
    expect(view.hasMatch('$req/dev/7/get')).toBe(true)
    expect(view.hasMatch('$req/dev/7/set')).toBe(false)
    expect(view.hasMatch('$req/other')).toBe(false)
  })

  it('replaces a node\'s filters with each newer snapshot and ignores older ones', () => {
    const view = new ClusterView(SELF, 3000)
    view.apply({ node: A, seq: 1, filters: ['$req/echo/#'] }, 0)
    expect(view.apply({ node: A, seq: 2, filters: ['$req/time/#'] }, 10)).toBe(true)
    expect(view.hasMatch('$req/echo/x')).toBe(false)
    expect(view.hasMatch('$req/time/x')).toBe(true)
    // Out of order (the start-up read racing a live message): the older one loses.
    expect(view.apply({ node: A, seq: 1, filters: ['$req/echo/#'] }, 20)).toBe(false)
    expect(view.hasMatch('$req/echo/x')).toBe(false)
    // A heartbeat with nothing new changes nothing.
    expect(view.apply({ node: A, seq: 3, filters: ['$req/time/#'] }, 30)).toBe(false)
  })

  it('keeps a filter while any node holds it', () => {
    const view = new ClusterView(SELF, 3000)
    view.apply({ node: A, seq: 0, filters: ['$req/echo/#'] }, 0)
    view.apply({ node: B, seq: 0, filters: ['$req/echo/#'] }, 0)
    view.apply({ node: A, seq: 1, filters: [] }, 1)
    expect(view.hasMatch('$req/echo/x')).toBe(true)
    view.apply({ node: B, seq: 1, filters: [], gone: true }, 2)
    expect(view.hasMatch('$req/echo/x')).toBe(false)
    expect(view.nodes).toEqual([A])
  })

  it('forgets a node not heard from within the TTL, and everything on clear()', () => {
    const view = new ClusterView(SELF, 3000)
    view.apply({ node: A, seq: 0, filters: ['$req/echo/#'] }, 0)
    view.apply({ node: B, seq: 0, filters: ['$req/time/#'] }, 2000)
    expect(view.prune(3000)).toEqual([])
    expect(view.prune(3001)).toEqual([A])
    expect(view.isLive(A)).toBe(false)
    expect(view.hasMatch('$req/echo/x')).toBe(false)
    expect(view.hasMatch('$req/time/x')).toBe(true)
    view.clear()
    expect(view.hasMatch('$req/time/x')).toBe(false)
    expect(view.nodes).toEqual([])
  })
})

describe('snapshots on the wire', () => {
  it('round-trip, and anything else decodes to null', () => {
    const s = { node: A, seq: 4, filters: ['$req/echo/#'] }
    expect(decodeSnapshot(encodeSnapshot(s))).toEqual(s)
    expect(decodeSnapshot(encodeSnapshot({ ...s, gone: true }))).toEqual({ ...s, gone: true })
    for (const bad of ['', 'nope', '[]', '{"node":"short","seq":0,"filters":[]}', JSON.stringify({ ...s, seq: -1 }),
      JSON.stringify({ ...s, filters: ['plain/topic'] }), JSON.stringify({ ...s, filters: [1] }), JSON.stringify({ node: A, filters: [] })]) {
      expect(decodeSnapshot(bad), bad).toBeNull()
    }
  })
})

describe('node ids in correlation ids [P-5.1]', () => {
  it('every id a node makes starts with its node id, and names it', () => {
    const node = randomNodeId()
    expect(isNodeId(node)).toBe(true)
    const c = new Correlator({ maxInFlight: 10, prefix: node })
    const ids = [c.nextId(), c.nextId(), c.nextId()]
    for (const id of ids) expect(nodeOfId(id)).toBe(node)
    expect(new Set(ids).size).toBe(3)
    expect(randomNodeId()).not.toBe(node)
  })
})

describe('SubscriptionIndex.watch', () => {
  it('reports a watched filter when its first owner comes and its last one goes', () => {
    const index = new SubscriptionIndex<string>()
    index.add('early', '$req/early/#')
    const seen: Array<[string, boolean]> = []
    index.watch('$req/', (f, held) => seen.push([f, held]))
    expect(seen).toEqual([['$req/early/#', true]])
    index.add('a', '$req/echo/#')
    index.add('b', '$req/echo/#')
    index.add('a', 'plain/#')
    index.remove('a', '$req/echo/#')
    expect(index.watchedFilters().sort()).toEqual(['$req/early/#', '$req/echo/#'])
    index.removeOwner('b')
    index.removeOwner('early')
    expect(seen).toEqual([['$req/early/#', true], ['$req/echo/#', true], ['$req/echo/#', false], ['$req/early/#', false]])
    expect(index.watchedFilters()).toEqual([])
  })
})
