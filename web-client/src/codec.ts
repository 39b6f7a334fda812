// The subset of MQTT 3.1.1 a browser client needs: CONNECT, PUBLISH (QoS 0/1),
// PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT out; CONNACK, PUBLISH,
// PUBACK, SUBACK, UNSUBACK and PINGRESP in. Plain Uint8Array, no Node built-ins.
// Section numbers are those of the OASIS MQTT 3.1.1 specification.

export const CONNACK = 2
export const PUBLISH = 3
export const PUBACK = 4
export const SUBACK = 9
export const UNSUBACK = 11
export const PINGRESP = 13

export type QoS = 0 | 1

export type Packet =
  | { type: typeof CONNACK, sessionPresent: boolean, returnCode: number }
  | { type: typeof PUBLISH, topic: string, payload: Uint8Array, qos: number, retain: boolean, dup: boolean, id: number }
  | { type: typeof PUBACK | typeof UNSUBACK, id: number }
  | { type: typeof SUBACK, id: number, granted: number[] }
  | { type: typeof PINGRESP }

export interface ConnectFields {
  clientId: string
  keepalive: number
  username?: string
  password?: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const utf8 = (s: string): Uint8Array => encoder.encode(s)

/** Assembles a packet: fixed header byte, remaining length [2.2.3], then the parts. */
function packet (first: number, parts: Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.length
  if (len > 268_435_455) throw new RangeError('MQTT packet too large')
  const head = [first]
  let n = len
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    head.push(byte)
  } while (n > 0)
  const out = new Uint8Array(head.length + len)
  out.set(head)
  let at = head.length
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

const u16 = (n: number): Uint8Array => new Uint8Array([n >> 8, n & 0xff])

/** A length-prefixed UTF-8 string [1.5.3]. */
function str (s: string): Uint8Array {
  const b = utf8(s)
  if (b.length > 65_535) throw new RangeError('MQTT string longer than 65535 bytes')
  const out = new Uint8Array(b.length + 2)
  out.set(u16(b.length))
  out.set(b, 2)
  return out
}

/** CONNECT [3.1] with a clean session: the client resubscribes itself after every connect. */
export function encodeConnect (f: ConnectFields): Uint8Array {
  // Protocol name "MQTT", level 4 [3.1.2.1], [3.1.2.2]; clean session bit 0x02 [3.1.2.4].
  let flags = 0x02
  const parts = [str('MQTT'), new Uint8Array([4]), new Uint8Array(1), u16(f.keepalive), str(f.clientId)]
  // A password needs a user name [MQTT-3.1.2-22].
  const username = f.username ?? (f.password === undefined ? undefined : '')
  if (username !== undefined) {
    flags |= 0x80
    parts.push(str(username))
  }
  if (f.password !== undefined) {
    flags |= 0x40
    parts.push(str(f.password))
  }
  (parts[2] as Uint8Array)[0] = flags
  return packet(0x10, parts)
}

/** PUBLISH [3.3]; id is ignored for QoS 0. */
export function encodePublish (topic: string, payload: Uint8Array, qos: QoS, retain: boolean, id: number, dup = false): Uint8Array {
  const first = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)
  return packet(first, qos === 0 ? [str(topic), payload] : [str(topic), u16(id), payload])
}

export const encodePuback = (id: number): Uint8Array => packet(0x40, [u16(id)])

/** SUBSCRIBE [3.8]: the fixed header flags are 0010 [MQTT-3.8.1-1]. */
export function encodeSubscribe (id: number, subs: ReadonlyArray<readonly [string, QoS]>): Uint8Array {
  const parts = [u16(id)]
  for (const [filter, qos] of subs) parts.push(str(filter), new Uint8Array([qos]))
  return packet(0x82, parts)
}

/** UNSUBSCRIBE [3.10]: flags 0010 as well [MQTT-3.10.1-1]. */
export function encodeUnsubscribe (id: number, filters: readonly string[]): Uint8Array {
  return packet(0xa2, [u16(id), ...filters.map(str)])
}

export const PINGREQ_BYTES = new Uint8Array([0xc0, 0])
export const DISCONNECT_BYTES = new Uint8Array([0xe0, 0])

/**
 * Splits a byte stream into packets. A WebSocket message may hold several
 * packets or part of one [6.0], so leftovers wait for the next message.
 */
export class PacketReader {
  private buf = new Uint8Array(0)

  /** Feeds bytes; returns every complete packet. Throws on a malformed packet. */
  push (chunk: Uint8Array): Packet[] {
    let buf = chunk
    if (this.buf.length > 0) {
      buf = new Uint8Array(this.buf.length + chunk.length)
      buf.set(this.buf)
      buf.set(chunk, this.buf.length)
    }
    const out: Packet[] = []
    let at = 0
    for (;;) {
      if (buf.length - at < 2) break
      let len = 0
      let mul = 1
      let i = at + 1
      let complete = false
      for (; i < buf.length && i < at + 5; i++) {
        const b = buf[i] as number
        len += (b & 0x7f) * mul
        mul *= 128
        if ((b & 0x80) === 0) { complete = true; break }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('malformed remaining length')
        break
      }
      const start = i + 1
      if (buf.length - start < len) break
      out.push(decode(buf[at] as number, buf.subarray(start, start + len)))
      at = start + len
    }
    this.buf = at === buf.length ? new Uint8Array(0) : buf.slice(at)
    return out
  }
}

function decode (first: number, body: Uint8Array): Packet {
  const type = first >> 4
  const id = body.length >= 2 ? ((body[0] as number) << 8) | (body[1] as number) : 0
  switch (type) {
    case CONNACK:
      if (body.length !== 2) break
      return { type, sessionPresent: ((body[0] as number) & 1) === 1, returnCode: body[1] as number }
    case PUBLISH: {
      const qos = (first >> 1) & 3
      if (body.length < 2 || qos === 3) break
      const tlen = id
      let at = 2 + tlen
      if (at > body.length) break
      const topic = decoder.decode(body.subarray(2, at))
      let pid = 0
      if (qos > 0) {
        if (at + 2 > body.length) break
        pid = ((body[at] as number) << 8) | (body[at + 1] as number)
        at += 2
      }
      return { type, topic, payload: body.slice(at), qos, retain: (first & 1) === 1, dup: (first & 8) === 8, id: pid }
    }
    case PUBACK:
    case UNSUBACK:
      if (body.length !== 2) break
      return { type, id }
    case SUBACK:
      if (body.length < 3) break
      return { type, id, granted: Array.from(body.subarray(2)) }
    case PINGRESP:
      return { type }
  }
  throw new Error(`unexpected or malformed MQTT packet type ${type}`)
}
