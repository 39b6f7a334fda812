import { describe, expect, it } from 'vitest'
import { ResultStore, resultTopic } from '../../gateway/amqp/results.js'

function store (ttlMs: number, maxBytes = 1_000_000) {
  let now = 1_000
  const published: Array<{ topic: string, payload: string, retain: boolean }> = []
  const s = new ResultStore({ ttlMs, maxBytes, now: () => now, publish: (topic, payload, retain) => published.push({ topic, payload: payload.toString(), retain }) })
  return { s, published, advance: (ms: number) => { now += ms } }
}

describe('async result store', () => {
  it('says pending until finished, then keeps the result for the retention time', () => {
    const { s, published, advance } = store(1000)
    const h = s.newHandle()
    s.begin(h, 'r1', 'echo')
    expect(s.get(h)?.state).toBe('pending')
    s.finish(h, 'r1', 'echo', { kind: 'reply', reply: { id: 'r1', status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' } })
    expect(s.get(h)?.state).toBe('done')
    expect(published).toEqual([{ topic: resultTopic(h), payload: JSON.stringify({ id: 'r1', status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' }), retain: true }])
    advance(999)
    expect(s.get(h)?.state).toBe('done')
    advance(1)
    expect(s.get(h)).toBeUndefined()
    s.sweep()
    // The retained message is cleared when the result expires.
    expect(published.at(-1)).toEqual({ topic: resultTopic(h), payload: '', retain: true })
    expect(s.counters.expired).toBe(1)
    s.close()
  })

  it('stores errors as the reply the caller would have had', () => {
    const { s, published } = store(1000)
    const h = s.newHandle()
    s.begin(h, 'r2', 'echo')
    s.finish(h, 'r2', 'echo', { kind: 'error', code: 'RTW_REPLY_TIMEOUT' })
    const msg = JSON.parse(published[0]?.payload ?? '{}')
    expect(msg.status).toBe(504)
    expect(JSON.parse(msg.body).error.code).toBe('RTW_REPLY_TIMEOUT')
    s.close()
  })

  it('drops the oldest results early when over its memory bound', () => {
    const { s } = store(60_000, 2048)
    const handles = Array.from({ length: 10 }, (_, i) => {
      const h = s.newHandle()
      s.begin(h, `r${i}`, 'echo')
      s.finish(h, `r${i}`, 'echo', { kind: 'reply', reply: { id: `r${i}`, status: 200, headers: {}, body: 'x'.repeat(300) } })
      return h
    })
    expect(s.storedBytes).toBeLessThanOrEqual(2048)
    expect(s.get(handles[0] as string)).toBeUndefined()
    expect(s.get(handles[9] as string)?.state).toBe('done')
    expect(s.counters.evicted).toBeGreaterThan(0)
    s.close()
  })

  it('makes unguessable handles', () => {
    const { s } = store(1000)
    const a = s.newHandle()
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(s.newHandle()).not.toBe(a)
    s.close()
  })
})
