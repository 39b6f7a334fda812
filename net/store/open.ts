// Which backend keeps the gateway's state: Redis when redisUrl is set (so
// every node sees the same results and idempotency records), else LevelDB in
// <dataDir>/gateway when dataDir is set, else memory. The Redis and LevelDB
// clients are loaded only when configured, so a memory-only gateway never
// loads ioredis or the LevelDB binding.
import { join } from 'node:path'
import type { StoreBackend } from './store.js'
import { MemoryBackend } from './memory.js'

/** `dir` is this process's own directory under dataDir: LevelDB allows one process per directory. */
export async function openStateBackend (config: { dataDir: string, redisUrl: string }, dir = 'gateway'): Promise<StoreBackend> {
  if (config.redisUrl !== '') {
    const { RedisBackend } = await import('./redis.js')
    return new RedisBackend(config.redisUrl)
  }
  if (config.dataDir !== '') {
    const { LevelBackend } = await import('./level.js')
    return await LevelBackend.open(join(config.dataDir, dir))
  }
  return new MemoryBackend()
}
