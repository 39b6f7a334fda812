// A QoS 0 PUBLISH as the bytes on the wire, built in one buffer. The gateway
// sends each request to its responders this way: mqtt-packet's writer costs a
// handful of stream writes and string conversions per packet, and the same
// frame serves every responder that matches.

/** Largest Remaining Length a four-byte varint can say [MQTT-2.2.3]. */
const MAX_REMAINING = 268_435_455

/** Fixed header 0x30 (PUBLISH, DUP 0, QoS 0, RETAIN 0) [MQTT-3.3.1], Remaining Length, topic [MQTT-3.3.2], payload [MQTT-3.3.3]. */
export function qos0PublishFrame (topic: string, payload: Uint8Array): Buffer {
  const topicBytes = Buffer.byteLength(topic)
  if (topicBytes > 65_535) throw new RangeError('topic is longer than 65535 bytes [MQTT-1.5.3]')
  const remaining = 2 + topicBytes + payload.length
  if (remaining > MAX_REMAINING) throw new RangeError('PUBLISH is longer than the 268435455 bytes MQTT can frame [MQTT-2.2.3]')
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x20_0000 ? 3 : 4
  const frame = Buffer.allocUnsafe(1 + lengthBytes + remaining)
  frame[0] = 0x30
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
