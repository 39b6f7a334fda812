// The cluster's history (gateway/history/redis.ts) on a real redis-server: its
// three bounds, historySize, historyTtlMs and historyMaxBytes, each on its own,
// all-or-nothing recovery [P-14.4], and one stream shared by two nodes.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisHistory } from '../../gateway/history/redis.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const buf = (s: string): Buffer => Buffer.from(s)
const LOG = 'rtw:history:log'
const META = 'rtw:history:meta'

describe('RedisHistory on a real redis-server', () => {
  let server: TestRedis
  let redis: Redis
  let other: Redis
  beforeAll(async () => {
    server = await startRedis()
    redis = new Redis(server.url)
    other = new Redis(server.url)
  })
  afterAll(async () => {
    redis?.disconnect()
    other?.disconnect()
    await server?.close()
  })
  beforeEach(async () => { await redis.flushall() })

  it('gives every message the next offset of one epoch, shared by two nodes, and recovers what came after a position', async () => {
    const a = new RedisHistory(redis, { size: 10, ttlMs: 60_000, maxBytes: 1_000_000 })
    const b = new RedisHistory(other, { size: 10, ttlMs: 60_000, maxBytes: 1_000_000 })
    const start = await a.head()
    const p1 = await a.append('x', buf('1'), 0)
    const p2 = await b.append('y', buf('2'), 1)
    await a.append('x', buf('3'), 0)
    expect(p1).toEqual({ epoch: start.epoch, offset: 1 })
    expect(p2).toEqual({ epoch: start.epoch, offset: 2 })
    const fromB = await b.recover(['x'], p1)
    expect(fromB).toMatchObject({ recovered: true, head: { epoch: start.epoch, offset: 3 } })
    expect(fromB.entries.map(e => [e.topic, e.payload.toString(), e.offset])).toEqual([['x', '3', 3]])
    const all = await a.recover(['#'], start)
    expect(all.entries.map(e => [e.offset, e.qos])).toEqual([[1, 0], [2, 1], [3, 0]])
  })

  it('historySize: more messages of a matching topic after the position than it keeps is not recovered, other topics are', async () => {
    const h = new RedisHistory(redis, { size: 3, ttlMs: 60_000, maxBytes: 1_000_000 })
    const start = await h.head()
    for (let i = 0; i < 5; i++) await h.append('busy', buf(String(i)), 0)
    await h.append('quiet', buf('q'), 0)
    expect((await h.recover(['busy'], start)).recovered).toBe(false)
    expect((await h.recover(['#'], start)).recovered).toBe(false)
    const quiet = await h.recover(['quiet'], start)
    expect(quiet.recovered).toBe(true)
    expect(quiet.entries.map(e => e.payload.toString())).toEqual(['q'])
    // Three busy messages after offset 2: within historySize again.
    expect((await h.recover(['busy'], { epoch: start.epoch, offset: 2 })).entries.map(e => e.offset)).toEqual([3, 4, 5])
  })

  it('historyTtlMs: an expired message fails recovery from before it, even before an append evicts it; an append then evicts it', async () => {
    let now = 1_000_000
    const h = new RedisHistory(redis, { size: 100, ttlMs: 1000, maxBytes: 1_000_000 }, () => now)
    const start = await h.head()
    await h.append('t', buf('old'), 0)
    now += 600
    await h.append('t', buf('new'), 0)
    now += 600
    // "old" is past its TTL but still in the stream (eviction runs on appends): recovery from before it fails anyway.
    expect(await redis.xlen(LOG)).toBe(2)
    expect((await h.recover(['t'], start)).recovered).toBe(false)
    const fresh = await h.recover(['t'], { epoch: start.epoch, offset: 1 })
    expect(fresh.entries.map(e => e.payload.toString())).toEqual(['new'])
    now += 5000
    await h.append('t', buf('newest'), 0)
    // The append evicted both older ones, oldest first, and recorded how far it evicted.
    expect(await redis.xlen(LOG)).toBe(1)
    expect(await redis.hget(META, 'dropped')).toBe('2')
    expect((await h.recover(['t'], { epoch: start.epoch, offset: 1 })).recovered).toBe(false)
    expect((await h.recover(['t'], { epoch: start.epoch, offset: 2 })).entries.map(e => e.payload.toString())).toEqual(['newest'])
  })

  it('historyMaxBytes: the stream stays under it, oldest first across topics, and recovery from before an eviction fails', async () => {
    const maxBytes = 10_000
    const h = new RedisHistory(redis, { size: 1000, ttlMs: 60_000, maxBytes })
    const start = await h.head()
    for (let i = 0; i < 100; i++) {
      await h.append(`t/${i % 7}`, Buffer.alloc(500), 0)
      expect(Number(await redis.hget(META, 'bytes'))).toBeLessThanOrEqual(maxBytes)
    }
    const kept = await redis.xlen(LOG)
    expect(kept).toBeGreaterThan(10)
    expect(kept).toBeLessThan(100)
    // The bytes counter is the sum of what the stream holds.
    const sizes = (await redis.xrange(LOG, '-', '+')).map(([, f]) => Number(f[f.indexOf('n') + 1]))
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(Number(await redis.hget(META, 'bytes')))
    const dropped = Number(await redis.hget(META, 'dropped'))
    expect(dropped).toBe(100 - kept)
    expect((await h.recover(['t/3'], start)).recovered).toBe(false)
    const after = await h.recover(['#'], { epoch: start.epoch, offset: dropped })
    expect(after.recovered).toBe(true)
    expect(after.entries.map(e => e.offset)).toEqual(Array.from({ length: kept }, (_, i) => dropped + 1 + i))
  })

  it('refuses another epoch, a position from the future, and every position once Redis lost the history', async () => {
    const h = new RedisHistory(redis, { size: 10, ttlMs: 60_000, maxBytes: 1_000_000 })
    const p = await h.append('a', buf('1'), 0)
    expect((await h.recover(['a'], { epoch: 'other', offset: 0 })).recovered).toBe(false)
    expect((await h.recover(['a'], { epoch: p.epoch, offset: 2 })).recovered).toBe(false)
    expect((await h.recover(['a'], { epoch: p.epoch, offset: 0 })).recovered).toBe(true)
    await redis.flushall()
    const again = await h.append('a', buf('2'), 0)
    expect(again.epoch).not.toBe(p.epoch)
    expect(again.offset).toBe(1)
    expect((await h.recover(['a'], p)).recovered).toBe(false)
  })
})
