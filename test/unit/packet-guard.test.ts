// The packet-size guard over the raw MQTT byte stream [MQTT-2.2.3].
import { describe, expect, it } from 'vitest'
import { PassThrough } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { PacketGuard, connectProtocolLevel, guardConnection, type Violation } from '../../broker/packet-guard.js'

const publish = (payloadBytes: number): Buffer => mqttPacket.generate({
  cmd: 'publish', topic: 't/1', payload: Buffer.alloc(payloadBytes, 7), qos: 0, retain: false, dup: false
} as mqttPacket.IPublishPacket)

describe('PacketGuard', () => {
  it('passes a stream of packets at or under the limit, however it is split', () => {
    const stream = Buffer.concat([publish(10), publish(0), publish(1000), Buffer.from([0xc0, 0x00]), publish(100)])
    for (const step of [1, 2, 3, 7, 64, stream.length]) {
      const g = new PacketGuard(1 + 2 + 1005)
      for (let i = 0; i < stream.length; i += step) expect(g.scan(stream.subarray(i, i + step))).toBeNull()
    }
  })

  it('stops at the header of a packet over maxPacketSize, before its body arrives', () => {
    const big = publish(2000)
    const g = new PacketGuard(1024)
    expect(g.scan(publish(10))).toBeNull()
    // Only the fixed header: the verdict needs no body bytes.
    expect(g.scan(big.subarray(0, 3))).toEqual({ kind: 'too-large', size: big.length })
  })

  it('counts the whole packet (fixed header included) against the limit', () => {
    const p = publish(100)
    expect(new PacketGuard(p.length).scan(p)).toBeNull()
    expect(new PacketGuard(p.length - 1).scan(p)).toEqual({ kind: 'too-large', size: p.length })
  })

  it('refuses a Remaining Length longer than four bytes [MQTT-2.2.3]', () => {
    expect(new PacketGuard(1 << 28).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toMatchObject({ kind: 'malformed' })
    // Four bytes is the maximum form (268,435,455), merely too large.
    expect(new PacketGuard(1000).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toEqual({ kind: 'too-large', size: 1 + 4 + 268_435_455 })
  })

  it('refuses a SUBSCRIBE or UNSUBSCRIBE with no room for a topic filter [MQTT-3.8.3-3], [MQTT-3.10.3-2]', () => {
    expect(new PacketGuard(100).scan(Buffer.from([0x82, 0x02, 0x00, 0x01]))).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/SUBSCRIBE/) })
    expect(new PacketGuard(100).scan(Buffer.from([0xa2, 0x02, 0x00, 0x01]))).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/UNSUBSCRIBE/) })
    expect(new PacketGuard(100).scan(Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]))).toBeNull()
  })

  describe('SUBSCRIBE and UNSUBSCRIBE with Packet Identifier 0 [MQTT-2.3.1-1]', () => {
    const sub = (id: number): Buffer => mqttPacket.generate({
      cmd: 'subscribe', messageId: id, subscriptions: [{ topic: 'a/b', qos: 1 }]
    } as mqttPacket.ISubscribePacket)
    const unsub = (id: number): Buffer => mqttPacket.generate({
      cmd: 'unsubscribe', messageId: id, unsubscriptions: ['a/b']
    } as mqttPacket.IUnsubscribePacket)
    const cases: Array<[string, (id: number) => Buffer]> = [['SUBSCRIBE', sub], ['UNSUBSCRIBE', unsub]]

    it.each(cases)('refuses a %s with id 0', (name, make) => {
      expect(new PacketGuard(100).scan(make(0))).toEqual({ kind: 'packet-id-zero', reason: `${name} with Packet Identifier 0 [MQTT-2.3.1-1]` })
    })

    it.each(cases)('accepts a %s with a non-zero id, high or low byte', (_name, make) => {
      const g = new PacketGuard(100)
      for (const id of [1, 0x100, 0xffff]) expect(g.scan(make(id))).toBeNull()
      // And the guard is back in step for the packets that follow.
      expect(g.scan(publish(10))).toBeNull()
      expect(g.scan(make(0))).toMatchObject({ kind: 'packet-id-zero' })
    })

    it.each(cases)('reads a %s id split across two chunks, one byte in each', (_name, make) => {
      const zero = make(0)
      // The fixed header is 2 bytes here: split between the id's high and low byte.
      const g = new PacketGuard(100)
      expect(g.scan(zero.subarray(0, 3))).toBeNull()
      expect(g.scan(zero.subarray(3))).toMatchObject({ kind: 'packet-id-zero' })
      // A zero high byte then a non-zero low byte, and the other way round.
      for (const id of [0x0001, 0x0100]) {
        const p = make(id)
        const h = new PacketGuard(100)
        expect(h.scan(p.subarray(0, 3))).toBeNull()
        expect(h.scan(p.subarray(3))).toBeNull()
        expect(h.scan(publish(5))).toBeNull()
      }
    })

    it.each(cases)('refuses a %s with id 0 however the stream is split', (_name, make) => {
      const stream = Buffer.concat([publish(10), make(7), publish(3), make(0), publish(1)])
      for (const step of [1, 2, 3, 5, stream.length]) {
        const g = new PacketGuard(100)
        let verdict: Violation | null = null
        for (let i = 0; i < stream.length && verdict === null; i += step) verdict = g.scan(stream.subarray(i, i + step))
        expect(verdict, `step ${step}`).toMatchObject({ kind: 'packet-id-zero' })
      }
    })

    it('leaves a PUBLISH alone: its bytes after the header are not read as an id', () => {
      // A QoS 0 PUBLISH whose topic length (the first two body bytes) is 0x0000 is the parser's business.
      const g = new PacketGuard(100)
      expect(g.scan(Buffer.from([0x30, 0x03, 0x00, 0x00, 0x78]))).toBeNull()
      expect(g.scan(publish(0))).toBeNull()
      // Nor are PUBACK, PUBREC, PUBREL, PUBCOMP, which [MQTT-2.3.1-1] does not name.
      for (const type of [0x40, 0x50, 0x62, 0x70]) expect(g.scan(Buffer.from([type, 0x02, 0x00, 0x00]))).toBeNull()
    })
  })

  it('a length lie is caught even when the varint is split across chunks', () => {
    const g = new PacketGuard(100)
    expect(g.scan(Buffer.from([0x30, 0x80]))).toBeNull()
    expect(g.scan(Buffer.from([0x01]))).toEqual({ kind: 'too-large', size: 1 + 2 + 128 })
  })
})

describe('guardConnection', () => {
  it('hands acceptable chunks through unchanged and withholds the chunk that breaks the limit', async () => {
    const conn = new PassThrough()
    const seen: Violation[] = []
    guardConnection(conn, 200, v => seen.push(v))
    const ok = publish(50)
    conn.write(ok)
    await new Promise(resolve => conn.once('readable', resolve))
    expect(conn.read()).toEqual(ok)
    conn.write(publish(500))
    await new Promise(resolve => setImmediate(resolve))
    expect(conn.read()).toBeNull()
    expect(seen).toEqual([{ kind: 'too-large', size: publish(500).length }])
    expect(conn.destroyed).toBe(true)
  })
})

describe('guardConnection and Packet Identifier 0', () => {
  it('withholds the SUBSCRIBE, destroys the connection and reports once', async () => {
    const conn = new PassThrough()
    const seen: Violation[] = []
    guardConnection(conn, 200, v => seen.push(v))
    conn.write(Buffer.from([0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00]))
    await new Promise(resolve => conn.once('readable', resolve))
    expect(conn.read()).toBeNull()
    expect(conn.destroyed).toBe(true)
    expect(seen).toEqual([{ kind: 'packet-id-zero', reason: 'SUBSCRIBE with Packet Identifier 0 [MQTT-2.3.1-1]' }])
    expect(conn.read()).toBeNull()
    expect(seen).toHaveLength(1)
  })
})

describe('connectProtocolLevel', () => {
  it('reads the level of a CONNECT at the start of a chunk', () => {
    const c = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'x', keepalive: 10 } as mqttPacket.IConnectPacket)
    expect(connectProtocolLevel(c)).toBe(4)
    const old = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: 'x', keepalive: 10 } as mqttPacket.IConnectPacket)
    expect(connectProtocolLevel(old)).toBe(3)
    expect(connectProtocolLevel(c.subarray(0, 8))).toBeUndefined()
    expect(connectProtocolLevel(Buffer.from([0x30, 0x00]))).toBeUndefined()
  })
})
