// A QoS 0 PUBLISH as the bytes on the wire, built in one buffer. The gateway
// sends each request to its responders, and each QoS 0 delivery of Aedes's
// router (internals.ts deliverQoS0), this way: mqtt-packet's writer costs a
// handful of stream writes and string conversions per packet, and the same
// frame serves every subscriber that matches.

/** Largest Remaining Length a four-byte varint can say [MQTT-2.2.3]. */
const MAX_REMAINING = 268_435_455

/**
 * Fixed header 0x30 (PUBLISH, QoS 0; DUP and RETAIN as given, as mqtt-packet
 * writes them) [MQTT-3.3.1], Remaining Length, topic [MQTT-3.3.2], payload [MQTT-3.3.3].
 */
export function qos0PublishFrame (topic: string, payload: Uint8Array, retain = false, dup = false): Buffer {
  const topicBytes = Buffer.byteLength(topic)
  if (topicBytes > 65_535) throw new RangeError('topic is longer than 65535 bytes [MQTT-1.5.3]')
  const remaining = 2 + topicBytes + payload.length
  if (remaining > MAX_REMAINING) throw new RangeError('PUBLISH is longer than the 268435455 bytes MQTT can frame [MQTT-2.2.3]')
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x20_0000 ? 3 : 4
  const frame = Buffer.allocUnsafe(1 + lengthBytes + remaining)
  frame[0] = 0x30 | (dup ? 0x08 : 0) | (retain ? 0x01 : 0)
  let o = 1
  let n = remaining
  do {
    const digit = n % 128
    n = Math.floor(n / 128)
    frame[o++] = n > 0 ? digit | 0x80 : digit
  } while (n > 0)
  frame[o++] = topicBytes >> 8
  frame[o++] = topicBytes & 0xff
  o += frame.write(topic, o, 'utf8')
  frame.set(payload, o)
  return frame
}
