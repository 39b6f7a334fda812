// The shared history of a cluster (PROTOCOL.md §14): one Redis stream for
// every node, so a client recovers on whichever node it reconnects to. Each
// message is appended once, by the node it was published on, in one Lua
// script: the position (an offset from one counter), the entry, and the
// eviction by age and total bytes, oldest first. historySize per topic is
// applied when reading: a topic with more messages after the position than
// it keeps cannot be recovered from there, as in memory.
import type { Redis } from 'ioredis'
import { newEpoch, type History, type HistoryEntry, type HistoryLimits, type Position, type Recovery } from '../../core/history.js'
import { topicMatches } from '../../core/topics.js'

const LOG = 'rtw:history:log'
const META = 'rtw:history:meta'
// Messages read at most by one recovery; past it the recovery says recovered: false.
const MAX_READ = 100_000

// KEYS: log, meta. ARGV: topic, payload, qos, now, ttlMs, maxBytes, a fresh epoch.
// Returns { epoch, offset }. Evicts at most 100 entries per append, so the cost stays bounded.
const APPEND = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[7]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'bytes', 0, 'dropped', 0)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local size = string.len(ARGV[1]) + string.len(ARGV[2]) + 64
redis.call('XADD', KEYS[1], seq .. '-0', 't', ARGV[1], 'p', ARGV[2], 'q', ARGV[3], 'at', ARGV[4], 'n', size)
local bytes = redis.call('HINCRBY', KEYS[2], 'bytes', size)
local cutoff = tonumber(ARGV[4]) - tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[6])
for i = 1, 100 do
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first == 0 then break end
  local id = first[1][1]
  local f = first[1][2]
  local at, n = 0, 0
  for j = 1, #f, 2 do
    if f[j] == 'at' then at = tonumber(f[j + 1]) elseif f[j] == 'n' then n = tonumber(f[j + 1]) end
  end
  if at > cutoff and bytes <= maxBytes then break end
  redis.call('XDEL', KEYS[1], id)
  bytes = redis.call('HINCRBY', KEYS[2], 'bytes', -n)
  redis.call('HSET', KEYS[2], 'dropped', string.match(id, '^(%d+)'))
end
return { epoch, seq }
`

type WithAppend = Redis & { rtwHistoryAppend: (log: string, meta: string, ...args: Array<string | Buffer | number>) => Promise<[string, number]> }

export class RedisHistory implements History {
  private readonly redis: WithAppend

  constructor (redis: Redis, private readonly limits: HistoryLimits, private readonly now: () => number = Date.now) {
    if (typeof (redis as unknown as Partial<WithAppend>).rtwHistoryAppend !== 'function') redis.defineCommand('rtwHistoryAppend', { numberOfKeys: 2, lua: APPEND })
    this.redis = redis as unknown as WithAppend
  }

  async append (topic: string, payload: Buffer, qos: 0 | 1 | 2): Promise<Position> {
    const [epoch, offset] = await this.redis.rtwHistoryAppend(LOG, META, topic, payload, qos, this.now(), this.limits.ttlMs, this.limits.maxBytes, newEpoch())
    return { epoch: String(epoch), offset: Number(offset) }
  }

  async head (): Promise<Position> {
    await this.redis.hsetnx(META, 'epoch', newEpoch())
    const [epoch, seq] = await this.redis.hmget(META, 'epoch', 'seq')
    return { epoch: epoch as string, offset: Number(seq ?? 0) }
  }

  async recover (filters: readonly string[], since: Position): Promise<Recovery> {
    const [epoch, seq, dropped] = await this.redis.hmget(META, 'epoch', 'seq', 'dropped')
    const head = { epoch: epoch ?? '', offset: Number(seq ?? 0) }
    const none = { recovered: false, entries: [], head }
    // [P-14.4] another epoch (Redis lost the history), a position from the future, or evictions after it.
    if (epoch !== since.epoch || since.offset > head.offset || Number(dropped ?? 0) > since.offset) return none
    const raw = await this.redis.xrangeBuffer(LOG, `${since.offset + 1}-0`, `${head.offset}-0`, 'COUNT', MAX_READ)
    if (raw.length === MAX_READ) return none
    const cutoff = this.now() - this.limits.ttlMs
    const entries: HistoryEntry[] = []
    const perTopic = new Map<string, number>()
    for (const [id, fields] of raw) {
      const f = new Map<string, Buffer>()
      for (let i = 0; i + 1 < fields.length; i += 2) f.set((fields[i] as Buffer).toString(), fields[i + 1] as Buffer)
      const topic = f.get('t')?.toString() ?? ''
      if (!filters.some(filter => topicMatches(filter, topic))) continue
      // Expired but not yet evicted (eviction runs on appends), or past historySize: as if evicted.
      if (Number(f.get('at')?.toString()) <= cutoff) return none
      const n = (perTopic.get(topic) ?? 0) + 1
      if (n > this.limits.size) return none
      perTopic.set(topic, n)
      entries.push({ topic, payload: f.get('p') ?? Buffer.alloc(0), qos: Number(f.get('q')?.toString()) as 0 | 1 | 2, offset: Number(id.toString().split('-')[0]) })
    }
    return { recovered: true, entries, head }
  }

  async close (): Promise<void> {
    // The connection is the cluster's, closed with it.
  }
}
