// Which backend keeps the gateway's state: Redis when redisUrl is set (so
// every node sees the same results and idempotency records), else LevelDB in
// <dataDir>/gateway when dataDir is set, else memory.
import { join } from 'node:path'
import type { StoreBackend } from './store.js'
import { MemoryBackend } from './memory.js'
import { LevelBackend } from './level.js'
import { RedisBackend } from './redis.js'

/** `dir` is this process's own directory under dataDir: LevelDB allows one process per directory. */
export async function openStateBackend (config: { dataDir: string, redisUrl: string }, dir = 'gateway'): Promise<StoreBackend> {
  if (config.redisUrl !== '') return new RedisBackend(config.redisUrl)
  if (config.dataDir !== '') return await LevelBackend.open(join(config.dataDir, dir))
  return new MemoryBackend()
}
