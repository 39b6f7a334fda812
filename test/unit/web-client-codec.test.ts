// The web client's MQTT 3.1.1 codec, checked against mqtt-packet (the codec
// MQTT.js and Aedes use): what we write, it parses; what it writes, we parse.
import { describe, expect, it } from 'vitest'
import mqttPacket, { type Packet as MqttPacket } from 'mqtt-packet'
import {
  CONNACK, DISCONNECT_BYTES, PINGREQ_BYTES, PINGRESP, PUBACK, PUBLISH, SUBACK, UNSUBACK,
  PacketReader, encodeConnect, encodePuback, encodePublish, encodeSubscribe, encodeUnsubscribe
} from '../../web-client/src/codec.js'

/** Parses bytes with mqtt-packet, as the broker would. */
function parse (bytes: Uint8Array): MqttPacket[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const out: MqttPacket[] = []
  const errors: Error[] = []
  parser.on('packet', p => out.push(p))
  parser.on('error', e => errors.push(e))
  parser.parse(Buffer.from(bytes))
  if (errors.length > 0) throw errors[0]
  return out
}

const generate = (p: Record<string, unknown>): Uint8Array => new Uint8Array(mqttPacket.generate(p as unknown as MqttPacket, { protocolVersion: 4 }))

describe('web-client codec: what the client sends', () => {
  it('CONNECT with a clean session, keepalive and a token as the password', () => {
    const [p] = parse(encodeConnect({ clientId: 'rtw-abc', keepalive: 25, username: 'jwt', password: 'tok.en.sig' }))
    expect(p).toMatchObject({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 25, clientId: 'rtw-abc', username: 'jwt' })
    expect(String((p as { password?: Buffer }).password)).toBe('tok.en.sig')
  })

  it('CONNECT without credentials, and a password alone gets an empty user name [MQTT-3.1.2-22]', () => {
    const [bare] = parse(encodeConnect({ clientId: 'c1', keepalive: 0 }))
    expect(bare).toMatchObject({ cmd: 'connect', clientId: 'c1', keepalive: 0 })
    expect((bare as { username?: string }).username).toBeUndefined()
    const [pw] = parse(encodeConnect({ clientId: 'c2', keepalive: 10, password: 'secret' }))
    expect(pw).toMatchObject({ username: '' })
    expect(String((pw as { password?: Buffer }).password)).toBe('secret')
  })

  it('PUBLISH at QoS 0 and 1, with retain, dup, UTF-8 topics and large payloads', () => {
    const big = new Uint8Array(200_000).map((_, i) => i % 251)
    const packets = parse(new Uint8Array([
      ...encodePublish('a/b', new TextEncoder().encode('hi'), 0, false, 0),
      ...encodePublish('sensors/küche/°C', big, 1, true, 513, true)
    ]))
    expect(packets[0]).toMatchObject({ cmd: 'publish', topic: 'a/b', qos: 0, retain: false })
    expect(String((packets[0] as { payload: Buffer }).payload)).toBe('hi')
    expect(packets[1]).toMatchObject({ cmd: 'publish', topic: 'sensors/küche/°C', qos: 1, retain: true, dup: true, messageId: 513 })
    expect(Buffer.compare((packets[1] as { payload: Buffer }).payload, Buffer.from(big))).toBe(0)
  })

  it('SUBSCRIBE, UNSUBSCRIBE, PUBACK, PINGREQ and DISCONNECT', () => {
    const packets = parse(new Uint8Array([
      ...encodeSubscribe(7, [['$inbox/c1/#', 1], ['demo/+', 0]]),
      ...encodeUnsubscribe(8, ['demo/+', 'x']),
      ...encodePuback(9),
      ...PINGREQ_BYTES,
      ...DISCONNECT_BYTES
    ]))
    expect(packets[0]).toMatchObject({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: '$inbox/c1/#', qos: 1 }, { topic: 'demo/+', qos: 0 }] })
    expect(packets[1]).toMatchObject({ cmd: 'unsubscribe', messageId: 8, unsubscriptions: ['demo/+', 'x'] })
    expect(packets[2]).toMatchObject({ cmd: 'puback', messageId: 9 })
    expect(packets.slice(3).map(p => p.cmd)).toEqual(['pingreq', 'disconnect'])
  })
})

describe('web-client codec: what the client reads', () => {
  const stream = new Uint8Array([
    ...generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }),
    ...generate({ cmd: 'publish', topic: '$inbox/c1/1', payload: Buffer.from('{"id":"1"}'), qos: 1, messageId: 300, retain: false, dup: false }),
    ...generate({ cmd: 'publish', topic: 'demo/x', payload: Buffer.alloc(20_000, 7), qos: 0, retain: true, dup: false }),
    ...generate({ cmd: 'puback', messageId: 2 }),
    ...generate({ cmd: 'suback', messageId: 3, granted: [1, 0, 128] }),
    ...generate({ cmd: 'unsuback', messageId: 4 }),
    ...generate({ cmd: 'pingresp' })
  ])

  function check (packets: ReturnType<PacketReader['push']>): void {
    expect(packets.map(p => p.type)).toEqual([CONNACK, PUBLISH, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP])
    expect(packets[0]).toEqual({ type: CONNACK, sessionPresent: false, returnCode: 0 })
    expect(packets[1]).toMatchObject({ topic: '$inbox/c1/1', qos: 1, id: 300, retain: false })
    expect(new TextDecoder().decode((packets[1] as { payload: Uint8Array }).payload)).toBe('{"id":"1"}')
    expect(packets[2]).toMatchObject({ topic: 'demo/x', qos: 0, retain: true })
    expect((packets[2] as { payload: Uint8Array }).payload).toEqual(new Uint8Array(20_000).fill(7))
    expect(packets[4]).toEqual({ type: SUBACK, id: 3, granted: [1, 0, 128] })
  }

  it('reads several packets from one WebSocket message', () => {
    check(new PacketReader().push(stream))
  })

  it('reads packets split across messages at every possible point', () => {
    for (const size of [1, 2, 3, 5, 64, 4096]) {
      const reader = new PacketReader()
      const out = []
      for (let i = 0; i < stream.length; i += size) out.push(...reader.push(stream.subarray(i, i + size)))
      check(out)
    }
  })

  it('refuses a malformed remaining length and unexpected packet types', () => {
    expect(() => new PacketReader().push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/remaining length/)
    expect(() => new PacketReader().push(generate({ cmd: 'pubrec', messageId: 1 }))).toThrow(/unexpected/)
    expect(() => new PacketReader().push(new Uint8Array([0x20, 0x01, 0x00]))).toThrow(/malformed/)
  })
})
