// A namespace kept by this process: the bookkeeping in a BoundedIndex, the
// values in a ValueSink (a Map for memory, a LevelDB sublevel for dataDir).
import { BoundedIndex } from './bounded-index.js'
import { entryBytes, type EvictReason, type KvStore, type PutResult, type StoreBounds, type StoreStats, type SwapResult } from './store.js'

export interface ValueSink {
  read: (key: string) => Promise<string | undefined>
  write: (key: string, value: string, expiresAt: number) => Promise<void>
  remove: (keys: string[]) => Promise<void>
}

export class LocalStore implements KvStore {
  onEvict: ((key: string, why: EvictReason) => void) | undefined
  private readonly index: BoundedIndex
  /** Values being written: read-your-writes while the sink is still busy. */
  private readonly writing = new Map<string, string>()
  private readonly timer: NodeJS.Timeout

  constructor (readonly name: string, private readonly bounds: StoreBounds, private readonly sink: ValueSink, private readonly now: () => number = Date.now) {
    this.index = new BoundedIndex(bounds)
    this.timer = setInterval(() => { void this.sweep() }, Math.max(50, Math.min(bounds.ttlMs / 2, 1_000)))
    this.timer.unref()
  }

  /** Takes in an entry found in the sink at start-up; false when it has expired or does not fit. */
  restore (key: string, bytes: number, expiresAt: number): boolean {
    if (expiresAt <= this.now()) return false
    const r = this.index.admit(key, bytes, expiresAt, this.now())
    if (r.ok && r.evicted.length > 0) void this.sink.remove(r.evicted)
    return r.ok
  }

  async get (key: string): Promise<string | undefined> {
    if (!this.index.live(key, this.now())) return undefined
    return this.writing.get(key) ?? await this.sink.read(key)
  }

  async put (key: string, value: string, ttlMs?: number): Promise<PutResult> {
    return await this.store(key, value, ttlMs, false)
  }

  async add (key: string, value: string, ttlMs?: number): Promise<PutResult> {
    return await this.store(key, value, ttlMs, true)
  }

  async swap (key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<SwapResult> {
    for (;;) {
      const version = this.index.version(key, this.now())
      const current = version === undefined ? undefined : this.writing.get(key) ?? await this.sink.read(key)
      // Optimistic: a write that came in while the sink was read has a new version, so read again.
      if (this.index.version(key, this.now()) !== version) continue
      if (current !== expected) return 'changed'
      // store() admits the key before its first await: nothing can come in between this check and the write.
      const r = await this.store(key, value, ttlMs, false)
      return r === 'full' ? 'full' : 'stored'
    }
  }

  private async store (key: string, value: string, ttlMs: number | undefined, onlyIfAbsent: boolean): Promise<PutResult> {
    const now = this.now()
    // Checked and recorded before any await, so two add()s of one key cannot both win.
    if (onlyIfAbsent && this.index.live(key, now)) return 'exists'
    const expiresAt = now + (ttlMs ?? this.bounds.ttlMs)
    const admitted = this.index.admit(key, entryBytes(key, value), expiresAt, now)
    if (!admitted.ok) return 'full'
    this.writing.set(key, value)
    try {
      if (admitted.evicted.length > 0) {
        await this.sink.remove(admitted.evicted)
        for (const k of admitted.evicted) this.onEvict?.(k, 'evicted')
      }
      await this.sink.write(key, value, expiresAt)
    } catch (err) {
      this.index.remove(key)
      throw err
    } finally {
      if (this.writing.get(key) === value) this.writing.delete(key)
    }
    return 'stored'
  }

  async delete (key: string): Promise<void> {
    if (this.index.remove(key)) await this.sink.remove([key])
  }

  async sweep (): Promise<void> {
    const gone = this.index.sweep(this.now())
    if (gone.length === 0) return
    await this.sink.remove(gone).catch(() => {})
    for (const k of gone) this.onEvict?.(k, 'expired')
  }

  stats (): StoreStats {
    return this.index.stats()
  }

  close (): void {
    clearInterval(this.timer)
  }
}
