// The LevelDB backend (the `level` package, in <dataDir>/gateway): each
// namespace is a sublevel, each value is stored as "<expiresAt>\n<value>", and
// the index of keys, sizes and expiries is rebuilt from disk at start-up.
// LevelDB appends every write to its log before answering, so a process killed
// with SIGKILL loses nothing written; only a power loss can lose the last writes.
import { mkdirSync } from 'node:fs'
import { Level } from 'level'
import { LocalStore } from './local.js'
import { entryBytes, type KvStore, type StoreBackend, type StoreBounds } from './store.js'

export class LevelBackend implements StoreBackend {
  readonly kind = 'level'
  readonly healthy = true
  private readonly stores = new Map<string, LocalStore>()

  private constructor (private readonly db: Level<string, string>, private readonly now: () => number) {}

  /** Opens (creating) the database in dir; fails when another process holds it. */
  static async open (dir: string, now: () => number = Date.now): Promise<LevelBackend> {
    mkdirSync(dir, { recursive: true })
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    await db.open()
    return new LevelBackend(db, now)
  }

  async open (name: string, bounds: StoreBounds): Promise<KvStore> {
    if (this.stores.has(name)) throw new Error(`store ${name} is already open`)
    const sub = this.db.sublevel<string, string>(name, { valueEncoding: 'utf8' })
    const store = new LocalStore(name, bounds, {
      read: async key => {
        const raw = await sub.get(key)
        return raw === undefined ? undefined : raw.slice(raw.indexOf('\n') + 1)
      },
      write: async (key, value, expiresAt) => { await sub.put(key, `${expiresAt}\n${value}`) },
      remove: async keys => { await sub.batch(keys.map(key => ({ type: 'del' as const, key }))) }
    }, this.now)
    // Oldest expiry first, so the bounds push out what would have gone first anyway.
    const found: Array<{ key: string, bytes: number, expiresAt: number }> = []
    const stale: string[] = []
    for await (const [key, raw] of sub.iterator()) {
      const nl = raw.indexOf('\n')
      const expiresAt = Number(raw.slice(0, nl))
      if (nl === -1 || !Number.isFinite(expiresAt)) stale.push(key)
      else found.push({ key, bytes: entryBytes(key, raw.slice(nl + 1)), expiresAt })
    }
    found.sort((a, b) => a.expiresAt - b.expiresAt)
    for (const f of found) if (!store.restore(f.key, f.bytes, f.expiresAt)) stale.push(f.key)
    if (stale.length > 0) await sub.batch(stale.map(key => ({ type: 'del' as const, key })))
    this.stores.set(name, store)
    return store
  }

  async close (): Promise<void> {
    for (const s of this.stores.values()) s.close()
    this.stores.clear()
    await this.db.close()
  }
}
