// The in-memory history: positions, the three bounds, and all-or-nothing recovery [P-14].
import { describe, expect, it } from 'vitest'
import { formatPosition, isRecorded, MemoryHistory, parsePosition } from '../../core/history.js'

const limits = { size: 3, ttlMs: 1000, maxBytes: 1_000_000 }
const buf = (s: string): Buffer => Buffer.from(s)

describe('MemoryHistory', () => {
  it('gives each message the next offset of one epoch, and recovers what came after a position', async () => {
    const h = new MemoryHistory(limits)
    const p1 = h.appendNow('a', buf('1'), 0)
    h.appendNow('b', buf('2'), 1)
    h.appendNow('a', buf('3'), 0)
    expect(p1).toEqual({ epoch: h.epoch, offset: 1 })
    const r = await h.recover(['a'], p1)
    expect(r.recovered).toBe(true)
    expect(r.entries.map(e => [e.topic, e.payload.toString(), e.offset])).toEqual([['a', '3', 3]])
    expect(r.head).toEqual({ epoch: h.epoch, offset: 3 })
    const all = await h.recover(['#'], { epoch: h.epoch, offset: 0 })
    expect(all.entries.map(e => e.offset)).toEqual([1, 2, 3])
    expect(all.entries[1]?.qos).toBe(1)
  })

  it('keeps historySize messages per topic, and fails recovery from before an eviction of a matching topic only', async () => {
    const h = new MemoryHistory(limits)
    const start = await h.head()
    for (let i = 0; i < 5; i++) h.appendNow('busy', buf(String(i)), 0)
    h.appendNow('quiet', buf('q'), 0)
    expect(h.stats.messages).toBe(4)
    expect((await h.recover(['busy'], start)).recovered).toBe(false)
    expect((await h.recover(['#'], start)).recovered).toBe(false)
    const quiet = await h.recover(['quiet'], start)
    expect(quiet.recovered).toBe(true)
    expect(quiet.entries.map(e => e.payload.toString())).toEqual(['q'])
    // From after the evictions, busy recovers again.
    expect((await h.recover(['busy'], { epoch: h.epoch, offset: 2 })).entries.map(e => e.offset)).toEqual([3, 4, 5])
  })

  it('drops messages older than historyTtlMs', async () => {
    let now = 0
    const h = new MemoryHistory(limits, () => now)
    h.appendNow('t', buf('old'), 0)
    now = 600
    h.appendNow('t', buf('new'), 0)
    now = 1200
    const r = await h.recover(['t'], { epoch: h.epoch, offset: 1 })
    expect(r.entries.map(e => e.payload.toString())).toEqual(['new'])
    expect((await h.recover(['t'], { epoch: h.epoch, offset: 0 })).recovered).toBe(false)
    now = 5000
    expect((await h.recover(['t'], { epoch: h.epoch, offset: 1 })).recovered).toBe(false)
    expect(h.stats).toEqual({ topics: 0, messages: 0, bytes: 0 })
  })

  it('stays under historyMaxBytes, oldest first across topics', () => {
    const h = new MemoryHistory({ size: 1000, ttlMs: 60_000, maxBytes: 10_000 })
    for (let i = 0; i < 100; i++) h.appendNow(`t/${i % 7}`, Buffer.alloc(500), 0)
    expect(h.stats.bytes).toBeLessThanOrEqual(10_000)
    expect(h.stats.messages).toBeGreaterThan(10)
  })

  it('refuses another epoch and a position from the future', async () => {
    const h = new MemoryHistory(limits)
    h.appendNow('a', buf('1'), 0)
    expect((await h.recover(['a'], { epoch: 'other', offset: 0 })).recovered).toBe(false)
    expect((await h.recover(['a'], { epoch: h.epoch, offset: 2 })).recovered).toBe(false)
    expect((await h.recover(['a'], { epoch: h.epoch, offset: 1 })).recovered).toBe(true)
  })
})

describe('positions and topics', () => {
  it('round-trips the text form and refuses anything else', () => {
    expect(parsePosition(formatPosition({ epoch: 'abc123', offset: 42 }))).toEqual({ epoch: 'abc123', offset: 42 })
    for (const bad of [undefined, '', 'abc', 'ABC-1', 'a-b', 'a--1', 'a-1-2']) expect(parsePosition(bad)).toBeNull()
  })

  it('records topics matching historyTopics, never "$" topics under "#", never $history copies', () => {
    expect(isRecorded(['#'], 'a/b')).toBe(true)
    expect(isRecorded(['#'], '$SYS/x')).toBe(false)
    expect(isRecorded(['a/+'], 'b/c')).toBe(false)
    expect(isRecorded(['$history/#'], '$history/a')).toBe(false)
  })
})
