// A real Redis for tests: Debian's redis-server on a free port with its own
// directory (scripts/redis-node.ts), deleted at the end. Under CI a missing
// redis-server fails the suite instead of quietly skipping it.
import { existsSync } from 'node:fs'
import { REDIS_SERVER, startRedisNode, type RedisNode } from '../../scripts/redis-node.js'

export type TestRedis = RedisNode

export function redisAvailable (): boolean {
  return process.env.CI === 'true' || existsSync(REDIS_SERVER)
}

export async function startRedis (opts: { appendOnly?: boolean } = {}): Promise<TestRedis> {
  return await startRedisNode(opts)
}
