// A small key-value store for the gateway's own state (async results,
// idempotency records), with one interface and three backends: memory (one
// process, today's behaviour), LevelDB (<dataDir>/gateway, survives a crash)
// and Redis (shared by every node of a cluster). Every backend passes the same
// suite (test/integration/store.test.ts), as aedes-persistence's backends do.

/** How much one namespace may hold. Entries expire after their TTL; bytes count key plus value. */
export interface StoreBounds {
  /** TTL of an entry when put() names none. */
  ttlMs: number
  maxEntries: number
  maxBytes: number
  /**
   * What a new key does when the bounds are reached: push the oldest entries
   * out ('evict-oldest', for caches), or be refused ('refuse', for records
   * whose early loss would break a promise, such as idempotency).
   */
  whenFull: 'evict-oldest' | 'refuse'
}

/** 'exists': add() found the key taken. 'full': refused by the bounds (whenFull 'refuse'). */
export type PutResult = 'stored' | 'exists' | 'full'

/** 'changed': swap() found another value than the one expected (or none, or one where none was expected). */
export type SwapResult = 'stored' | 'changed' | 'full'

export type EvictReason = 'expired' | 'evicted'

export interface StoreStats {
  /** As this node last saw them (for Redis: after its own last write). */
  entries: number
  bytes: number
  stored: number
  expired: number
  evicted: number
  refused: number
}

export interface KvStore {
  readonly name: string
  get: (key: string) => Promise<string | undefined>
  /** Sets the value, replacing any; a new key may still be refused when full. */
  put: (key: string, value: string, ttlMs?: number) => Promise<PutResult>
  /** Sets the value only when the key is absent: atomic across processes sharing the backend. */
  add: (key: string, value: string, ttlMs?: number) => Promise<PutResult>
  /**
   * Compare-and-set: sets the value only when the key holds `expected` now
   * (undefined: when it is absent), atomic across processes sharing the
   * backend, so a read-decide-write cycle can tell that someone wrote between.
   */
  swap: (key: string, expected: string | undefined, value: string, ttlMs?: number) => Promise<SwapResult>
  delete: (key: string) => Promise<void>
  /**
   * Called for entries this node saw leave because of a bound or their TTL.
   * Local backends see every one; Redis reports only what this node's writes
   * pushed out, and entries whose TTL passed in Redis itself are not reported.
   */
  onEvict: ((key: string, why: EvictReason) => void) | undefined
  stats: () => StoreStats
}

export interface StoreBackend {
  readonly kind: 'memory' | 'level' | 'redis'
  /** One namespace: its own keys, bounds and stats. Opening the same name twice is an error. */
  open: (name: string, bounds: StoreBounds) => Promise<KvStore>
  /** False while the backend cannot be reached (Redis down). */
  readonly healthy: boolean
  close: () => Promise<void>
}

export function entryBytes (key: string, value: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(value)
}
