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
  it('lets the asked client answer once on the request\'s service; repeats and late replies pass for the correlator to count', () => {
    const l = new Ledger()
    l.asked('a', 'svc', 1000, 0)
    expect(l.answer('b', 'svc', 0)).toBe(false)
    expect(l.answer('a', 'other', 0)).toBe(true) // wrong-service: left open
    expect(l.answer('a', 'svc', 0)).toBe(true)
    expect(l.size).toBe(0)
    expect(l.answer('a', 'svc', 0)).toBe(true) // a duplicate, recognised
    l.asked('c', 'svc', 10, 0)
    expect(l.answer('c', 'svc', 11)).toBe(true) // late
  })
  it('forgets unanswered requests past their deadline as it grows', () => {
    const l = new Ledger()
    for (let i = 0; i < 300; i++) l.asked(`old${i}`, 's', 5, 0)
    for (let i = 0; i < 300; i++) l.asked(`new${i}`, 's', 1000, 100)
    expect(l.size).toBeLessThanOrEqual(300)
    expect(l.answer('old1', 's', 100)).toBe(false)
    expect(l.answer('new299', 's', 100)).toBe(true)
  })
})
