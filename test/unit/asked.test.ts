// Who was sent which request [P-3.8]: reading an envelope's id and deadline, and the per-client ledger.
import { describe, expect, it } from 'vitest'
import { Ledger, deadlineOf, requestIdOf } from '../../core/asked.js'
import { encodeRequest } from '../../core/envelope.js'

const env = (id: string, deadline: number): Buffer => encodeRequest({ id, method: 'GET', path: '/x', query: '', headers: { a: '"}' }, body: '"deadline":1}', replyTo: deadline === 0 ? '' : `$res/s/$rid/${id}`, deadline })

describe('reading a request envelope without parsing it', () => {
  it('finds the id first and the deadline last, as the gateway encodes them', () => {
    expect(requestIdOf(env('Ab-_9xyz0', 1795327764059))).toBe('Ab-_9xyz0')
    expect(deadlineOf(env('i', 1795327764059))).toBe(1795327764059)
    expect(deadlineOf(env('i', 0))).toBe(0)
  })
  it('answers undefined or -1 for anything else', () => {
    for (const p of ['', '{}', '{"method":"GET","id":"x"}', '{"id":', 'null']) expect(requestIdOf(Buffer.from(p))).toBeUndefined()
    for (const p of ['', '{}', '{"deadline":}', '{"deadline":12', 'x:12}']) expect(deadlineOf(Buffer.from(p)), p).toBe(p === 'x:12}' ? 12 : -1)
  })
})

describe('Ledger', () => {
  it('lets the asked client answer; its repeats pass for the correlator to count; nobody else\'s ids pass', () => {
    const l = new Ledger()
    l.asked('a', 1000)
    expect(l.answer('b')).toBe(false)
    expect(l.answer('a')).toBe(true)
    expect(l.size).toBe(0)
    expect(l.answer('a')).toBe(true) // a repeat (duplicate, late or wrong-service), recognised
  })
  it('forgets unanswered requests past their deadline as it grows', () => {
    const l = new Ledger()
    for (let i = 0; i < 300; i++) l.asked(`old${i}`, 5)
    for (let i = 0; i < 300; i++) l.asked(`new${i}`, Date.now() + 60_000)
    expect(l.size).toBeLessThanOrEqual(300)
    expect(l.answer('old1')).toBe(false)
    expect(l.answer('new299')).toBe(true)
  })
})
