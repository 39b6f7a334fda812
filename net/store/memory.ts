// The memory backend: one process, gone with it (the default, as before dataDir and redisUrl).
import { LocalStore } from './local.js'
import type { KvStore, StoreBackend, StoreBounds } from './store.js'

export class MemoryBackend implements StoreBackend {
  readonly kind = 'memory'
  readonly healthy = true
  private readonly stores = new Map<string, LocalStore>()

  constructor (private readonly now: () => number = Date.now) {}

  async open (name: string, bounds: StoreBounds): Promise<KvStore> {
    if (this.stores.has(name)) throw new Error(`store ${name} is already open`)
    const values = new Map<string, string>()
    const store = new LocalStore(name, bounds, {
      read: async key => values.get(key),
      write: async (key, value) => { values.set(key, value) },
      remove: async keys => { for (const k of keys) values.delete(k) }
    }, this.now)
    this.stores.set(name, store)
    return store
  }

  async close (): Promise<void> {
    for (const s of this.stores.values()) s.close()
    this.stores.clear()
  }
}
