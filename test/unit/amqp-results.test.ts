import { describe, expect, it } from 'vitest'
import { ResultStore, resultTopic } from '../../gateway/amqp/results.js'
import { MemoryBackend } from '../../net/store/memory.js'
import type { LocalStore } from '../../net/store/local.js'

async function store (ttlMs: number, maxBytes = 1_000_000, maxEntries = 100_000) {
  let now = 1_000
  const published: Array<{ topic: string, payload: string, retain: boolean }> = []
  const backend = new MemoryBackend(() => now)
  const kv = await backend.open('results', { ttlMs, maxBytes, maxEntries, whenFull: 'evict-oldest' }) as LocalStore
  const s = new ResultStore({ kv, ttlMs, now: () => now, publish: (topic, payload, retain) => published.push({ topic, payload: payload.toString(), retain }) })
  return { s, kv, published, advance: (ms: number) => { now += ms }, close: async () => await backend.close() }
}

describe('async result store', () => {
  it('says pending until finished, then keeps the result for the retention time', async () => {
    const { s, kv, published, advance, close } = await store(1000)
    const h = s.newHandle()
    await s.begin(h, 'r1', 'echo', 4000, 5000)
    expect((await s.get(h))?.state).toBe('pending')
    await s.finish(h, 'r1', 'echo', { kind: 'reply', reply: { id: 'r1', status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' } })
    const done = await s.get(h)
    expect(done?.state).toBe('done')
    expect(done?.outcome).toEqual({ kind: 'reply', reply: { id: 'r1', status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' } })
    expect(published).toEqual([{ topic: resultTopic(h), payload: JSON.stringify({ id: 'r1', status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' }), retain: true }])
    advance(999)
    expect((await s.get(h))?.state).toBe('done')
    advance(1)
    expect(await s.get(h)).toBeUndefined()
    await kv.sweep()
    // The retained message is cleared when the result expires.
    expect(published.at(-1)).toEqual({ topic: resultTopic(h), payload: '', retain: true })
    expect(kv.stats().expired).toBe(1)
    await close()
  })

  it('keeps a binary body as bytes, and a begin after the finish does not undo it', async () => {
    const { s, close } = await store(1000)
    const h = s.newHandle()
    const body = Buffer.from([0, 255, 1, 254])
    await s.finish(h, 'r3', 'echo', { kind: 'reply', reply: { id: 'r3', status: 201, headers: {}, body } })
    await s.begin(h, 'r3', 'echo', 4000, 5000)
    const got = await s.get(h)
    expect(got?.state).toBe('done')
    expect(got?.outcome?.kind === 'reply' && Buffer.isBuffer(got.outcome.reply.body) && got.outcome.reply.body.equals(body)).toBe(true)
    await close()
  })

  it('stores errors as the reply the caller would have had', async () => {
    const { s, published, close } = await store(1000)
    const h = s.newHandle()
    await s.begin(h, 'r2', 'echo', 4000, 5000)
    await s.finish(h, 'r2', 'echo', { kind: 'error', code: 'RTW_REPLY_TIMEOUT' })
    const msg = JSON.parse(published[0]?.payload ?? '{}')
    expect(msg.status).toBe(504)
    expect(JSON.parse(msg.body).error.code).toBe('RTW_REPLY_TIMEOUT')
    expect((await s.get(h))?.outcome).toEqual({ kind: 'error', code: 'RTW_REPLY_TIMEOUT' })
    await close()
  })

  it('drops the oldest results early when over its byte or count bound, and clears their retained messages', async () => {
    for (const [maxBytes, maxEntries] of [[2048, 100_000], [1_000_000, 3]] as const) {
      const { s, kv, published, close } = await store(60_000, maxBytes, maxEntries)
      const handles: string[] = []
      for (let i = 0; i < 10; i++) {
        const h = s.newHandle()
        handles.push(h)
        await s.begin(h, `r${i}`, 'echo', 4000, 5000)
        await s.finish(h, `r${i}`, 'echo', { kind: 'reply', reply: { id: `r${i}`, status: 200, headers: {}, body: 'x'.repeat(300) } })
      }
      expect(kv.stats().bytes).toBeLessThanOrEqual(maxBytes)
      expect(kv.stats().entries).toBeLessThanOrEqual(maxEntries)
      expect(await s.get(handles[0] as string)).toBeUndefined()
      expect((await s.get(handles[9] as string))?.state).toBe('done')
      expect(kv.stats().evicted).toBeGreaterThan(0)
      expect(published).toContainEqual({ topic: resultTopic(handles[0] as string), payload: '', retain: true })
      await close()
    }
  })

  it('a reply adopted after a restart finishes its pending result; a pending result past its deadline reads as a timeout', async () => {
    const { s, advance, close } = await store(60_000)
    const h = s.newHandle()
    await s.begin(h, 'r7', 'echo', 4000, 64_000)
    expect(await s.adopt('someone-else', Buffer.from('{}'))).toBe(false)
    expect(await s.adopt('r7', Buffer.from(JSON.stringify({ id: 'r7', status: 200, headers: {}, body: 'late but kept' })))).toBe(true)
    const got = await s.get(h)
    expect(got?.state).toBe('done')
    expect(got?.outcome).toMatchObject({ kind: 'reply', reply: { id: 'r7', status: 200, body: 'late but kept' } })
    // A second copy of the reply is not adopted again.
    expect(await s.adopt('r7', Buffer.from('{}'))).toBe(false)

    const h2 = s.newHandle()
    await s.begin(h2, 'r8', 'echo', 4000, 64_000)
    advance(3999)
    expect((await s.get(h2))?.state).toBe('pending')
    advance(1)
    expect(await s.get(h2)).toMatchObject({ state: 'done', outcome: { kind: 'error', code: 'RTW_REPLY_TIMEOUT' } })
    await close()
  })

  it('makes unguessable handles', async () => {
    const { s, close } = await store(1000)
    const a = s.newHandle()
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(s.newHandle()).not.toBe(a)
    await close()
  })
})
