// The fast lane for replies. A responder answers each REST request with a
// QoS 0 PUBLISH on `$res/…` [P-3.1], usually many of them in one socket read.
// Through Aedes, each one is copied out of the read by mqtt-packet's buffer
// list, parsed field by field and walked through the broker's handler chain:
// together about a twentieth of the gateway's CPU per REST request. The packets
// at the head of a read that are complete QoS 0 PUBLISHes to `$res/…` are
// sliced out here instead and handed to `take`; Aedes's parser gets the rest
// of the read, from the first packet that is anything else, so packets are
// still handled in the order they came.
import type { Duplex } from 'node:stream'
import { PacketGuard } from './packet-guard.js'

/** `$res/` as the bytes that open the topic of a reply [P-1.5]. */
const RES = [0x24, 0x72, 0x65, 0x73, 0x2f]

/**
 * A reply's topic and payload; returns false to leave the packet to Aedes
 * (for one Aedes must refuse, such as a topic with a wildcard), and with it
 * the rest of the chunk.
 */
export type TakeReply = (topic: string, payload: Buffer) => boolean

/**
 * Takes the QoS 0 PUBLISH packets to `$res/…` that start `chunk`, each whole
 * in it. Returns the offset of the first packet not taken (chunk.length when
 * all were). The fixed header must be exactly 0x30: DUP, QoS and RETAIN 0
 * [MQTT-3.3.1-2]; a retained reply is dropped and counted by Aedes's path [P-3.6].
 */
export function takeReplies (chunk: Buffer, take: TakeReply): number {
  const len = chunk.length
  let o = 0
  while (o < len && chunk[o] === 0x30) {
    // Remaining Length [MQTT-2.2.3]: at most four bytes, all in this chunk.
    let remaining = 0
    let multiplier = 1
    let p = o + 1
    let b = 0x80
    while ((b & 0x80) !== 0) {
      if (p >= len || p - o > 4) return o
      b = chunk[p++] as number
      remaining += (b & 0x7f) * multiplier
      multiplier *= 128
    }
    const end = p + remaining
    if (end > len || remaining < 2 + RES.length) return o
    const topicLength = ((chunk[p] as number) << 8) | (chunk[p + 1] as number)
    const topicEnd = p + 2 + topicLength
    if (topicEnd > end) return o
    for (let i = 0; i < RES.length; i++) if (chunk[p + 2 + i] !== RES[i]) return o
    if (!take(chunk.toString('utf8', p + 2, topicEnd), chunk.subarray(topicEnd, end))) return o
    o = end
  }
  return o
}

type Read = (this: Duplex, size?: number) => unknown

/** One connection's tap: where its packets end, and what to ask and call. */
class Tap {
  readonly boundaries = new PacketGuard(Infinity)
  constructor (readonly read: Read, readonly ready: () => boolean, readonly take: TakeReply) {}
}

const TAP = Symbol('rtw.tap')
type Tapped = Duplex & { [TAP]: Tap }

// One function for every connection, its state under TAP: idle connections are most of a fleet.
function tappedRead (this: Tapped, size?: number): unknown {
  const t = this[TAP]
  const chunk: unknown = t.read.call(this, size)
  if (!Buffer.isBuffer(chunk)) return chunk
  const taken = t.boundaries.atBoundary && t.ready() ? takeReplies(chunk, t.take) : 0
  // All taken: null, as for an empty buffer, and the stream says 'readable' again on the next bytes.
  if (taken === chunk.length) return null
  const rest = taken === 0 ? chunk : chunk.subarray(taken)
  t.boundaries.scan(rest)
  return rest
}

/**
 * Puts takeReplies in front of the connection's reader (Aedes pulls bytes with
 * `conn.read()`, aedes/lib/client.js). Only while `ready()` says the client is
 * connected with nothing of its own pending, and only at a packet boundary:
 * a PacketGuard follows where the packets Aedes was given end.
 */
export function tapReplies (conn: Duplex, ready: () => boolean, take: TakeReply): void {
  (conn as Tapped)[TAP] = new Tap(conn.read as Read, ready, take)
  conn.read = tappedRead as Duplex['read']
}
