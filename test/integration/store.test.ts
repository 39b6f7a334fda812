// The gateway state backends (net/store/), each through the same abstract
// suite: memory, a real LevelDB directory and a real redis-server.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryBackend } from '../../net/store/memory.js'
import { LevelBackend } from '../../net/store/level.js'
import { RedisBackend } from '../../net/store/redis.js'
import { storeSuite } from '../helpers/store-suite.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'

storeSuite('memory', async () => new MemoryBackend())

const levelDir = mkdtempSync(join(tmpdir(), 'rtw-store-'))
afterAll(() => rmSync(levelDir, { recursive: true, force: true }))
storeSuite('LevelDB', async () => await LevelBackend.open(levelDir))

describe('LevelDB', () => {
  it('refuses a second process-level open of the same directory instead of corrupting it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtw-store-lock-'))
    const first = await LevelBackend.open(dir)
    try {
      await expect(LevelBackend.open(dir)).rejects.toThrow()
    } finally {
      await first.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe.skipIf(!redisAvailable())('Redis', () => {
  let redis: TestRedis
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis?.close() })

  storeSuite('Redis', async () => new RedisBackend(redis.url))

  it('two backends on one Redis see each other\'s keys, and only one of two racing adds wins', async () => {
    const a = new RedisBackend(redis.url)
    const b = new RedisBackend(redis.url)
    try {
      const bounds = { ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 16, whenFull: 'refuse' as const }
      const sa = await a.open('shared', bounds)
      const sb = await b.open('shared', bounds)
      await sa.put('from-a', '1')
      expect(await sb.get('from-a')).toBe('1')
      const [ra, rb] = await Promise.all([sa.add('race', 'a'), sb.add('race', 'b')])
      expect([ra, rb].sort()).toEqual(['exists', 'stored'])
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('is unhealthy while Redis is down, fails commands instead of hanging, and recovers', async () => {
    const backend = new RedisBackend(redis.url)
    try {
      const s = await backend.open('outage', { ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 16, whenFull: 'refuse' })
      await s.put('k', 'v')
      expect(backend.healthy).toBe(true)
      await redis.kill()
      await expect(s.get('k')).rejects.toThrow()
      expect(backend.healthy).toBe(false)
      await redis.start()
      const { waitFor } = await import('../helpers/wait.js')
      await waitFor(() => backend.healthy, { timeoutMs: 15_000, what: 'the Redis client to reconnect' })
      expect(await s.put('k2', 'v2')).toBe('stored')
    } finally {
      await backend.close()
    }
  })
})
