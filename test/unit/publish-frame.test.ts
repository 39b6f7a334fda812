import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { qos0PublishFrame } from '../../broker/publish-frame.js'

describe('qos0PublishFrame', () => {
  // Each Remaining Length size: 1, 2, 3 bytes, at and around the boundaries [MQTT-2.2.3].
  const sizes = [0, 1, 100, 127 - 8, 128 - 8, 16_383 - 8, 16_384 - 8, 70_000]
  for (const size of sizes) {
    it(`matches mqtt-packet's bytes for a ${size}-byte payload`, () => {
      const topic = '$req/echo/ünï'
      const payload = Buffer.alloc(size, 0x61)
      const expected = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false })
      expect(qos0PublishFrame(topic, payload).equals(expected)).toBe(true)
    })
  }

  for (const [retain, dup] of [[true, false], [false, true], [true, true]] as const) {
    it(`matches mqtt-packet's fixed header with RETAIN ${Number(retain)} and DUP ${Number(dup)}`, () => {
      const payload = Buffer.from('x')
      const expected = mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload, qos: 0, retain, dup })
      expect(qos0PublishFrame('a/b', payload, retain, dup).equals(expected)).toBe(true)
    })
  }

  it('parses back to the same topic and payload', () => {
    const parser = mqttPacket.parser()
    const seen: Array<{ topic: string, payload: string, qos: number }> = []
    parser.on('packet', p => {
      if (p.cmd === 'publish') seen.push({ topic: p.topic, payload: p.payload.toString(), qos: p.qos })
    })
    parser.parse(Buffer.concat([qos0PublishFrame('a/b', Buffer.from('one')), qos0PublishFrame('c', new Uint8Array(Buffer.from('two')))]))
    expect(seen).toEqual([{ topic: 'a/b', payload: 'one', qos: 0 }, { topic: 'c', payload: 'two', qos: 0 }])
  })

  it('refuses a topic MQTT cannot frame', () => {
    expect(() => qos0PublishFrame('x'.repeat(65_536), Buffer.alloc(0))).toThrow(RangeError)
  })
})
