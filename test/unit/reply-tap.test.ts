import { Readable } from 'node:stream'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { takeReplies, tapReplies } from '../../broker/reply-tap.js'

const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as Packet)
const pub = (topic: string, payload: string | Buffer, extra: Record<string, unknown> = {}): Buffer =>
  gen({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false, ...extra })

function collect (): { seen: Array<[string, string]>, take: (topic: string, payload: Buffer) => boolean } {
  const seen: Array<[string, string]> = []
  return { seen, take: (topic, payload) => { seen.push([topic, payload.toString()]); return true } }
}

describe('takeReplies', () => {
  it('takes every QoS 0 PUBLISH to $res/… at the head of a chunk, with topic and payload', () => {
    const { seen, take } = collect()
    const chunk = Buffer.concat([pub('$res/a/1', 'one'), pub('$res/ü/2', 'x'.repeat(300)), pub('$res/b', '')])
    expect(takeReplies(chunk, take)).toBe(chunk.length)
    expect(seen).toEqual([['$res/a/1', 'one'], ['$res/ü/2', 'x'.repeat(300)], ['$res/b', '']])
  })

  it('stops at the first packet that is not one, and leaves the rest', () => {
    const first = pub('$res/a/1', 'one')
    const cases: Array<[string, Buffer]> = [
      ['another topic', pub('$req/a/1', 'x')],
      ['QoS 1', pub('$res/a/1', 'x', { qos: 1, messageId: 3 })],
      ['retained', pub('$res/a/1', 'x', { retain: true })],
      ['a SUBSCRIBE', gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }] })],
      ['a PINGREQ', gen({ cmd: 'pingreq' })],
      ['a prefix of $res/', pub('$re', 'x')]
    ]
    for (const [what, second] of cases) {
      const { seen, take } = collect()
      const chunk = Buffer.concat([first, second, pub('$res/a/2', 'two')])
      expect(takeReplies(chunk, take), what).toBe(first.length)
      expect(seen, what).toEqual([['$res/a/1', 'one']])
    }
  })

  it('leaves a packet that is not whole in the chunk, however it is cut', () => {
    const whole = pub('$res/a/1', 'y'.repeat(200))
    for (let cut = 1; cut < whole.length; cut++) {
      const { seen, take } = collect()
      expect(takeReplies(whole.subarray(0, cut), take)).toBe(0)
      expect(seen).toEqual([])
    }
  })

  it('leaves a packet, and all after it, when take declines it', () => {
    const chunk = Buffer.concat([pub('$res/a/1', 'one'), pub('$res/+/2', 'two'), pub('$res/a/3', 'three')])
    const seen: string[] = []
    const offset = takeReplies(chunk, topic => { if (topic.includes('+')) return false; seen.push(topic); return true })
    expect(offset).toBe(pub('$res/a/1', 'one').length)
    expect(seen).toEqual(['$res/a/1'])
  })

  it('leaves a topic length that runs past its packet', () => {
    const bad = Buffer.from([0x30, 0x08, 0x00, 0x20, ...Buffer.from('$res/a')])
    expect(takeReplies(bad, () => true)).toBe(0)
  })
})

describe('tapReplies', () => {
  /** A paused stream read the way Aedes reads a connection: read() on demand. */
  function tapped (ready: () => boolean): { conn: Duplex, seen: string[], push: (b: Buffer) => void, read: () => Buffer | null } {
    const conn = new Readable({ read () {} }) as unknown as Duplex
    const seen: string[] = []
    tapReplies(conn, ready, topic => { seen.push(topic); return true })
    return {
      conn,
      seen,
      push: b => { conn.push(b) },
      read: () => conn.read() as Buffer | null
    }
  }

  it('hands Aedes nothing when a read held only replies, and the rest when it held more', () => {
    const t = tapped(() => true)
    t.push(Buffer.concat([pub('$res/a/1', 'one'), pub('$res/a/2', 'two')]))
    expect(t.read()).toBeNull()
    const ping = gen({ cmd: 'pingreq' })
    t.push(Buffer.concat([pub('$res/a/3', 'three'), ping]))
    expect(t.read()).toEqual(ping)
    expect(t.seen).toEqual(['$res/a/1', '$res/a/2', '$res/a/3'])
  })

  it('takes nothing before the client is ready', () => {
    let ready = false
    const t = tapped(() => ready)
    const chunk = pub('$res/a/1', 'one')
    t.push(chunk)
    expect(t.read()).toEqual(chunk)
    ready = true
    t.push(chunk)
    expect(t.read()).toBeNull()
    expect(t.seen).toEqual(['$res/a/1'])
  })

  it('takes nothing in the middle of a packet Aedes has begun, and again once it has all of it', () => {
    const t = tapped(() => true)
    const a = pub('$res/a/1', 'one')
    const b = pub('$res/a/2', 'x'.repeat(100))
    const c = pub('$res/a/3', 'three')
    // a whole, then b cut in two across reads: b goes to Aedes in both parts.
    t.push(Buffer.concat([a, b.subarray(0, 10)]))
    expect(t.read()).toEqual(b.subarray(0, 10))
    t.push(Buffer.concat([b.subarray(10), c]))
    expect(t.read()).toEqual(Buffer.concat([b.subarray(10), c]))
    // Back at a packet boundary: replies are taken again.
    t.push(c)
    expect(t.read()).toBeNull()
    expect(t.seen).toEqual(['$res/a/1', '$res/a/3'])
  })
})
