// The Redis backend (ioredis, the client mqemitter-redis and
// aedes-persistence-redis use), shared by every node of a cluster. A namespace
// is three keys besides its values, all under `rtw:<name>:`: `v:<key>` holds a
// value with its TTL (PX), the sorted set `idx` its expiry, the hash `sz` its
// size, and `bytes` the total. One Lua script checks the bounds and writes, so
// two nodes adding the same key at once cannot both win.
import { Redis } from 'ioredis'
import type { EvictReason, KvStore, PutResult, StoreBackend, StoreBounds, StoreStats, SwapResult } from './store.js'

export const REDIS_KEY_PREFIX = 'rtw:'

// KEYS: idx, sz, bytes. ARGV: value prefix, key, value, ttlMs, now, maxEntries,
// maxBytes, mode (0 put, 1 add: only if absent, 2 swap: only if it holds ARGV[10]),
// refuseWhenFull (1/0), expected value.
// Returns { result (0 exists, 1 stored, 2 full, 3 changed), entries, bytes, expired, evicted… }.
const PUT = `
local idx, sz, tot = KEYS[1], KEYS[2], KEYS[3]
local pre, key, val = ARGV[1], ARGV[2], ARGV[3]
local ttl, now, maxE, maxB = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local function drop (k)
  redis.call('DEL', pre .. k)
  redis.call('DECRBY', tot, tonumber(redis.call('HGET', sz, k) or '0'))
  redis.call('HDEL', sz, k)
  redis.call('ZREM', idx, k)
end
local expired = redis.call('ZRANGEBYSCORE', idx, '-inf', now, 'LIMIT', 0, 256)
for _, k in ipairs(expired) do drop(k) end
local isNew = redis.call('EXISTS', pre .. key) == 0
if ARGV[8] == '1' and not isNew then return { 0, redis.call('ZCARD', idx), tonumber(redis.call('GET', tot) or '0'), #expired } end
if ARGV[8] == '2' and redis.call('GET', pre .. key) ~= ARGV[10] then return { 3, redis.call('ZCARD', idx), tonumber(redis.call('GET', tot) or '0'), #expired } end
if isNew and redis.call('HEXISTS', sz, key) == 1 then drop(key) end
local size = #key + #val
local old = tonumber(redis.call('HGET', sz, key) or '0')
local function over ()
  local n = redis.call('ZCARD', idx)
  if isNew then n = n + 1 end
  return n > maxE or tonumber(redis.call('GET', tot) or '0') - old + size > maxB
end
local result = { 1, 0, 0, #expired }
if over() then
  if isNew and ARGV[9] == '1' then return { 2, redis.call('ZCARD', idx), tonumber(redis.call('GET', tot) or '0'), #expired } end
  while over() do
    local first = redis.call('ZRANGE', idx, 0, 1)
    local victim = first[1]
    if victim == key then victim = first[2] end
    if victim == nil then break end
    drop(victim)
    table.insert(result, victim)
  end
end
redis.call('SET', pre .. key, val, 'PX', ttl)
redis.call('ZADD', idx, now + ttl, key)
redis.call('HSET', sz, key, size)
redis.call('INCRBY', tot, size - old)
result[2] = redis.call('ZCARD', idx)
result[3] = tonumber(redis.call('GET', tot))
return result
`

const DELETE = `
redis.call('DEL', ARGV[1] .. ARGV[2])
redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0'))
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
return 1
`

type Commands = Redis & {
  rtwPut: (idx: string, sz: string, tot: string, ...args: Array<string | number>) => Promise<Array<number | string>>
  rtwDelete: (idx: string, sz: string, tot: string, pre: string, key: string) => Promise<number>
}

class RedisStore implements KvStore {
  onEvict: ((key: string, why: EvictReason) => void) | undefined
  private readonly keys: [string, string, string]
  private readonly valuePrefix: string
  private readonly counters = { entries: 0, bytes: 0, stored: 0, expired: 0, evicted: 0, refused: 0 }

  constructor (readonly name: string, private readonly bounds: StoreBounds, private readonly redis: Commands, private readonly now: () => number) {
    const base = `${REDIS_KEY_PREFIX}${name}:`
    this.keys = [base + 'idx', base + 'sz', base + 'bytes']
    this.valuePrefix = base + 'v:'
  }

  async get (key: string): Promise<string | undefined> {
    return (await this.redis.get(this.valuePrefix + key)) ?? undefined
  }

  async put (key: string, value: string, ttlMs?: number): Promise<PutResult> {
    return await this.store(key, value, ttlMs) as PutResult
  }

  async add (key: string, value: string, ttlMs?: number): Promise<PutResult> {
    return await this.store(key, value, ttlMs, '1') as PutResult
  }

  async swap (key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<SwapResult> {
    // From absent is an add; else the script compares in Redis, so no other node can write in between.
    const r = expected === undefined ? await this.store(key, value, ttlMs, '1') : await this.store(key, value, ttlMs, '2', expected)
    return r === 'exists' || r === 'changed' ? 'changed' : r
  }

  private async store (key: string, value: string, ttlMs: number | undefined, mode: '0' | '1' | '2' = '0', expected = ''): Promise<PutResult | 'changed'> {
    const b = this.bounds
    const r = await this.redis.rtwPut(...this.keys, this.valuePrefix, key, value, Math.max(1, ttlMs ?? b.ttlMs), this.now(),
      b.maxEntries, b.maxBytes, mode, b.whenFull === 'refuse' ? '1' : '0', expected)
    const [result, entries, bytes, expired] = r.slice(0, 4).map(Number) as [number, number, number, number]
    Object.assign(this.counters, { entries, bytes })
    this.counters.expired += expired
    for (const victim of r.slice(4)) {
      this.counters.evicted++
      this.onEvict?.(String(victim), 'evicted')
    }
    if (result === 0) return 'exists'
    if (result === 3) return 'changed'
    if (result === 2) {
      this.counters.refused++
      return 'full'
    }
    this.counters.stored++
    return 'stored'
  }

  async delete (key: string): Promise<void> {
    await this.redis.rtwDelete(...this.keys, this.valuePrefix, key)
  }

  stats (): StoreStats {
    return { ...this.counters }
  }
}

export class RedisBackend implements StoreBackend {
  readonly kind = 'redis'
  private readonly redis: Commands
  private readonly names = new Set<string>()

  /**
   * Reconnects forever with backoff (100 ms doubling to 2 s); a command made
   * while Redis is away fails after two retries rather than waiting, so a
   * caller learns it (503) instead of hanging.
   */
  constructor (url: string, private readonly now: () => number = Date.now) {
    this.redis = new Redis(url, {
      maxRetriesPerRequest: 2,
      retryStrategy: times => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      connectionName: `rtw-gateway pid ${process.pid}`
    }) as Commands
    // Errors reach callers through their commands; without a listener ioredis would print each one.
    this.redis.on('error', () => {})
    this.redis.defineCommand('rtwPut', { numberOfKeys: 3, lua: PUT })
    this.redis.defineCommand('rtwDelete', { numberOfKeys: 3, lua: DELETE })
  }

  get healthy (): boolean {
    return this.redis.status === 'ready'
  }

  async open (name: string, bounds: StoreBounds): Promise<KvStore> {
    if (this.names.has(name)) throw new Error(`store ${name} is already open`)
    this.names.add(name)
    return new RedisStore(name, bounds, this.redis, this.now)
  }

  async close (): Promise<void> {
    // QUIT waits for a reconnect that a Redis that is gone never allows: drop it then.
    if (this.redis.status !== 'ready') { this.redis.disconnect(); return }
    await this.redis.quit().catch(() => { this.redis.disconnect() })
  }
}
