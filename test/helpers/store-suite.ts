// The abstract suite every gateway state backend must pass (net/store/),
// as aedes-persistence ships one for its backends. `open` gives a fresh backend
// on the same underlying storage each time it is called.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreBackend, StoreBounds } from '../../net/store/store.js'
import { waitFor } from './wait.js'

const roomy: StoreBounds = { ttlMs: 60_000, maxEntries: 1000, maxBytes: 1 << 20, whenFull: 'evict-oldest' }

export function storeSuite (label: string, open: () => Promise<StoreBackend>): void {
  describe(`state store: ${label}`, () => {
    let backend: StoreBackend
    let n = 0
    const fresh = async (bounds: Partial<StoreBounds> = {}): Promise<Awaited<ReturnType<StoreBackend['open']>>> =>
      await backend.open(`t${process.pid}x${Date.now().toString(36)}x${n++}`, { ...roomy, ...bounds })

    beforeAll(async () => { backend = await open() })
    afterAll(async () => { await backend?.close() })

    it('reads back what was put, and nothing for a key never put', async () => {
      const s = await fresh()
      expect(await s.put('a', 'one')).toBe('stored')
      expect(await s.get('a')).toBe('one')
      expect(await s.get('b')).toBeUndefined()
      expect(await s.put('a', 'two ünïcode')).toBe('stored')
      expect(await s.get('a')).toBe('two ünïcode')
      expect(s.stats().entries).toBe(1)
      expect(s.stats().bytes).toBe(1 + Buffer.byteLength('two ünïcode'))
    })

    it('add() stores only when the key is absent, and of concurrent adds exactly one wins', async () => {
      const s = await fresh()
      expect(await s.add('k', 'first')).toBe('stored')
      expect(await s.add('k', 'second')).toBe('exists')
      expect(await s.get('k')).toBe('first')
      const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await s.add('race', `v${i}`)))
      expect(results.filter(r => r === 'stored')).toHaveLength(1)
      const winner = results.indexOf('stored')
      expect(await s.get('race')).toBe(`v${winner}`)
    })

    it('swap() sets the value only when the key holds the expected one, and of concurrent swaps exactly one wins', async () => {
      const s = await fresh()
      expect(await s.swap('k', 'not there', 'x')).toBe('changed')
      expect(await s.get('k')).toBeUndefined()
      expect(await s.swap('k', undefined, 'v1')).toBe('stored')
      expect(await s.swap('k', undefined, 'again')).toBe('changed')
      expect(await s.swap('k', 'v0', 'stale')).toBe('changed')
      expect(await s.get('k')).toBe('v1')
      expect(await s.swap('k', 'v1', 'v2')).toBe('stored')
      expect(await s.get('k')).toBe('v2')
      // Every racer read v2; only one may replace it, and the value is the winner's.
      const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await s.swap('k', 'v2', `w${i}`)))
      expect(results.filter(r => r === 'stored')).toHaveLength(1)
      expect(await s.get('k')).toBe(`w${results.indexOf('stored')}`)
      // From absent, the same: one of the racers creates the key.
      const created = await Promise.all(Array.from({ length: 20 }, async (_, i) => await s.swap('new', undefined, `n${i}`)))
      expect(created.filter(r => r === 'stored')).toHaveLength(1)
      expect(await s.get('new')).toBe(`n${created.indexOf('stored')}`)
    })

    it('swap() honours its TTL, finds an expired value absent, and is refused when full', async () => {
      const s = await fresh({ maxEntries: 1, whenFull: 'refuse' })
      expect(await s.swap('brief', undefined, 'a', 150)).toBe('stored')
      expect(await s.swap('other', undefined, 'b')).toBe('full')
      await waitFor(async () => (await s.get('brief')) === undefined, { timeoutMs: 5_000, what: 'the swapped entry to expire' })
      expect(await s.swap('brief', 'a', 'late')).toBe('changed')
      await waitFor(async () => (await s.swap('other', undefined, 'b')) === 'stored', { timeoutMs: 5_000, what: 'room after the TTL' })
      expect(await s.swap('other', 'b', 'c', 60_000)).toBe('stored')
      expect(await s.get('other')).toBe('c')
    })

    it('namespaces do not share keys', async () => {
      const a = await fresh()
      const b = await fresh()
      await a.put('same', 'in a')
      expect(await b.get('same')).toBeUndefined()
      expect(await b.add('same', 'in b')).toBe('stored')
      expect(await a.get('same')).toBe('in a')
    })

    it('an entry is gone after its TTL, and its key can be added again', async () => {
      const s = await fresh({ ttlMs: 150 })
      await s.put('short', 'x')
      await s.put('long', 'y', 60_000)
      expect(await s.get('short')).toBe('x')
      await waitFor(async () => (await s.get('short')) === undefined, { timeoutMs: 5_000, what: 'the entry to expire' })
      expect(await s.get('long')).toBe('y')
      expect(await s.add('short', 'again')).toBe('stored')
      expect(await s.get('short')).toBe('again')
    })

    it('evict-oldest: past maxEntries the oldest entry goes, and onEvict names it', async () => {
      const s = await fresh({ maxEntries: 2 })
      const evicted: string[] = []
      s.onEvict = (key, why) => { if (why === 'evicted') evicted.push(key) }
      await s.put('1', 'a')
      await s.put('2', 'b')
      await s.put('3', 'c')
      expect(await s.get('1')).toBeUndefined()
      expect(await s.get('2')).toBe('b')
      expect(await s.get('3')).toBe('c')
      expect(evicted).toEqual(['1'])
      expect(s.stats().entries).toBe(2)
    })

    it('evict-oldest: past maxBytes the oldest entries go until the new one fits', async () => {
      const s = await fresh({ maxBytes: 100 })
      await s.put('a', 'x'.repeat(39))
      await s.put('b', 'x'.repeat(39))
      // 40 + 40 + 62 bytes: both older entries must go for the third to fit in 100.
      await s.put('c', 'x'.repeat(61))
      expect(await s.get('a')).toBeUndefined()
      expect(await s.get('b')).toBeUndefined()
      expect(await s.get('c')).toHaveLength(61)
      expect(s.stats().bytes).toBe(62)
    })

    it('refuse: a new key past the bounds is refused and nothing is evicted; replacing a key still works', async () => {
      const s = await fresh({ maxEntries: 2, maxBytes: 1000, whenFull: 'refuse' })
      await s.add('1', 'a')
      await s.add('2', 'b')
      expect(await s.add('3', 'c')).toBe('full')
      expect(await s.put('3', 'c')).toBe('full')
      expect(await s.get('1')).toBe('a')
      expect(await s.get('3')).toBeUndefined()
      expect(await s.put('1', 'replaced')).toBe('stored')
      expect(await s.get('1')).toBe('replaced')
      expect(s.stats().refused).toBeGreaterThanOrEqual(2)
      await s.delete('2')
      expect(await s.get('2')).toBeUndefined()
      expect(await s.add('3', 'c')).toBe('stored')
      const big = await fresh({ maxBytes: 50, whenFull: 'refuse' })
      expect(await big.add('k', 'x'.repeat(60))).toBe('full')
    })

    it('refuse: room comes back as entries expire', async () => {
      const s = await fresh({ maxEntries: 1, ttlMs: 150, whenFull: 'refuse' })
      await s.add('old', 'a')
      expect(await s.add('new', 'b')).toBe('full')
      await waitFor(async () => (await s.add('new', 'b')) === 'stored', { timeoutMs: 5_000, what: 'room after the TTL' })
      expect(await s.get('old')).toBeUndefined()
    })

    it('survives being closed and opened again, when the backend is durable', async () => {
      if (backend.kind === 'memory') {
        expect(label).toBe('memory')
        return
      }
      const name = `durable${process.pid}x${Date.now().toString(36)}`
      const s = await backend.open(name, roomy)
      await s.put('kept', 'value')
      await s.put('brief', 'gone soon', 100)
      await backend.close()
      backend = await open()
      const again = await backend.open(name, roomy)
      expect(await again.get('kept')).toBe('value')
      await waitFor(async () => (await again.get('brief')) === undefined, { timeoutMs: 5_000, what: 'the short entry to expire' })
      expect(await again.add('kept', 'other')).toBe('exists')
    })
  })
}
