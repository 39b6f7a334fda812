// The subscription index answers "is anyone listening" (core/subscriptions.ts).
import { describe, expect, it } from 'vitest'
import { SubscriptionIndex } from '../../core/subscriptions.js'
import { topicMatches } from '../../core/topics.js'

describe('SubscriptionIndex', () => {
  it('matches exact, "+" and "#" filters', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', '$req/echo/#')
    idx.add('b', 'sensors/+/temp')
    expect(idx.hasMatch('$req/echo')).toBe(true)
    expect(idx.hasMatch('$req/echo/x/y')).toBe(true)
    expect(idx.hasMatch('$req/other/x')).toBe(false)
    expect(idx.hasMatch('sensors/k/temp')).toBe(true)
    expect(idx.hasMatch('sensors/k/hum')).toBe(false)
    expect(idx.hasMatch('sensors/k/temp/x')).toBe(false)
  })

  it('never lets a leading wildcard match a "$" topic [MQTT-4.7.2-1]', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', '#')
    idx.add('a', '+/echo/#')
    expect(idx.hasMatch('anything/here')).toBe(true)
    expect(idx.hasMatch('$req/echo/x')).toBe(false)
    idx.add('b', '$req/+/x')
    expect(idx.hasMatch('$req/echo/x')).toBe(true)
  })

  it('counts references: a filter stays while any owner holds it', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', '$req/echo/#')
    idx.add('b', '$req/echo/#')
    idx.remove('a', '$req/echo/#')
    expect(idx.hasMatch('$req/echo/x')).toBe(true)
    idx.remove('b', '$req/echo/#')
    expect(idx.hasMatch('$req/echo/x')).toBe(false)
  })

  it('ignores a repeated add by the same owner and a remove of a filter it does not hold', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', 't/x')
    idx.add('a', 't/x')
    idx.remove('b', 't/x')
    expect(idx.hasMatch('t/x')).toBe(true)
    idx.remove('a', 't/x')
    expect(idx.hasMatch('t/x')).toBe(false)
  })

  it('removes everything an owner held when it leaves, and counts owners', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', 'x/#')
    idx.add('a', 'y/+')
    idx.add('b', 'y/+')
    expect(idx.size).toBe(2)
    idx.removeOwner('a')
    expect(idx.size).toBe(1)
    expect(idx.hasMatch('x/1')).toBe(false)
    expect(idx.hasMatch('y/1')).toBe(true)
    idx.removeOwner('b')
    expect(idx.size).toBe(0)
    expect(idx.hasMatch('y/1')).toBe(false)
  })

  it('keeps a parent filter when a child filter under it is removed', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', 'a/b')
    idx.add('a', 'a/b/c')
    idx.remove('a', 'a/b/c')
    expect(idx.hasMatch('a/b')).toBe(true)
    expect(idx.hasMatch('a/b/c')).toBe(false)
  })

  it('agrees with topicMatches on every pair of a small universe of filters and topics', () => {
    const filters = ['#', '+', 'a', 'a/#', 'a/+', '+/b', 'a/b', 'a/b/#', '+/+/c', '$req/#', '$req/+/x', '$x/+', 'a//c', '+/#', '/', '/+']
    const topics = ['a', 'a/b', 'a/b/c', 'b', 'x/b', 'a//c', '$req/s/x', '$req/s', '$x/y', '/', '/a', 'a/']
    for (const f of filters) {
      const idx = new SubscriptionIndex<string>()
      idx.add('o', f)
      for (const t of topics) {
        expect(idx.hasMatch(t), `${f} vs ${t}`).toBe(topicMatches(f, t))
        const seen: string[] = []
        idx.forEachMatch(t, o => seen.push(o))
        expect(seen, `forEachMatch ${f} vs ${t}`).toEqual(topicMatches(f, t) ? ['o'] : [])
      }
    }
  })

  it('names each owner once per matching filter it holds, and forgets owners that left', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', '$req/echo/#')
    idx.add('a', '$req/echo/+')
    idx.add('b', '$req/+/x')
    idx.add('c', '$req/other/#')
    idx.add('d', '#')
    const owners = (topic: string): string[] => {
      const seen: string[] = []
      idx.forEachMatch(topic, o => seen.push(o))
      return seen.sort()
    }
    expect(owners('$req/echo/x')).toEqual(['a', 'a', 'b'])
    expect(owners('$req/echo')).toEqual(['a'])
    expect(owners('plain/topic')).toEqual(['d'])
    idx.remove('a', '$req/echo/+')
    expect(owners('$req/echo/x')).toEqual(['a', 'b'])
    idx.removeOwner('a')
    expect(owners('$req/echo/x')).toEqual(['b'])
  })

  it('answers from what is held now, after a topic was asked about before a change', () => {
    const idx = new SubscriptionIndex<string>()
    expect(idx.hasMatch('$req/echo/x')).toBe(false)
    idx.add('a', '$req/echo/#')
    expect(idx.hasMatch('$req/echo/x')).toBe(true)
    idx.remove('a', '$req/echo/#')
    expect(idx.hasMatch('$req/echo/x')).toBe(false)
    idx.add('b', '$req/+/x')
    expect(idx.hasMatch('$req/echo/x')).toBe(true)
    idx.removeOwner('b')
    expect(idx.hasMatch('$req/echo/x')).toBe(false)
  })

  it('walks the matches as they were when called, even if the callback changes the filters', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', 't/#')
    idx.add('b', 't/+')
    const seen: string[] = []
    idx.forEachMatch('t/x', o => {
      seen.push(o)
      idx.removeOwner('a')
      idx.removeOwner('b')
      idx.add('c', 't/x')
    })
    expect(seen.sort()).toEqual(['a', 'b'])
    const after: string[] = []
    idx.forEachMatch('t/x', o => after.push(o))
    expect(after).toEqual(['c'])
  })

  it('stays right past the number of topic names it remembers', () => {
    const idx = new SubscriptionIndex<string>()
    idx.add('a', 'u/#')
    for (let i = 0; i < 3000; i++) {
      expect(idx.hasMatch(`u/${i}`)).toBe(true)
      expect(idx.hasMatch(`v/${i}`)).toBe(false)
    }
    idx.add('b', 'v/7')
    expect(idx.hasMatch('v/7')).toBe(true)
    expect(idx.hasMatch('v/8')).toBe(false)
  })

  it('says whether any filter starts with a first level, as long as one is held', () => {
    const idx = new SubscriptionIndex<string>()
    expect(idx.holdsFirstLevel('$history')).toBe(false)
    idx.add('a', '$history/x/#')
    idx.add('b', '$history/y')
    idx.add('c', '#')
    expect(idx.holdsFirstLevel('$history')).toBe(true)
    idx.remove('a', '$history/x/#')
    expect(idx.holdsFirstLevel('$history')).toBe(true)
    idx.removeOwner('b')
    // '#' does not start with the level, and cannot match a "$" topic [MQTT-4.7.2-1].
    expect(idx.holdsFirstLevel('$history')).toBe(false)
    expect(idx.holdsFirstLevel('#')).toBe(true)
  })
})
