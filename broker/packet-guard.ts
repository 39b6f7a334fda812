// The MQTT packet guard. It walks the fixed header of every packet in the raw
// byte stream (type byte, then the Remaining Length varint [MQTT-2.2.3]) and
// stops the connection as soon as a packet announces more than maxPacketSize
// bytes, its Remaining Length runs past 4 bytes, or a SUBSCRIBE/UNSUBSCRIBE
// has no room for a topic filter, before the packet parser has buffered any of
// that packet's body. Of a SUBSCRIBE/UNSUBSCRIBE it also reads the two bytes
// of the Packet Identifier, which must not be 0 [MQTT-2.3.1-1]. It never copies
// a byte: payloads are skipped by arithmetic. It also answers an unsupported
// protocol level with CONNACK 0x01.
import type { Duplex } from 'node:stream'

const HEADER = 0
const LENGTH = 1
const BODY = 2
// The Packet Identifier of a SUBSCRIBE/UNSUBSCRIBE, one byte at a time: it may be split across chunks.
const ID_HIGH = 3
const ID_LOW = 4

export type Violation =
  | { kind: 'too-large', size: number }
  | { kind: 'malformed', reason: string }
  | { kind: 'protocol-level', level: number }
  /** A SUBSCRIBE/UNSUBSCRIBE with Packet Identifier 0: a conformance refusal, logged like the broker's own. */
  | { kind: 'packet-id-zero', reason: string }

const SUBSCRIBE_ID_ZERO = 'SUBSCRIBE with Packet Identifier 0 [MQTT-2.3.1-1]'
const UNSUBSCRIBE_ID_ZERO = 'UNSUBSCRIBE with Packet Identifier 0 [MQTT-2.3.1-1]'

/** CONNACK with return code 0x01, unacceptable protocol level [MQTT-3.2.2-4]. */
const CONNACK_UNACCEPTABLE_PROTOCOL = Buffer.from([0x20, 0x02, 0x00, 0x01])

/**
 * The Protocol Level of a CONNECT at the start of `chunk`, or undefined when the
 * chunk does not start with a CONNECT carrying the name "MQTT" or "MQIsdp" and its level.
 */
export function connectProtocolLevel (chunk: Uint8Array): number | undefined {
  if (chunk[0] !== 0x10) return undefined
  let o = 1
  while (o < 5 && o < chunk.length && ((chunk[o] as number) & 0x80) !== 0) o++
  o++
  if (o + 2 > chunk.length) return undefined
  const nameLength = ((chunk[o] as number) << 8) | (chunk[o + 1] as number)
  if (nameLength !== 4 && nameLength !== 6) return undefined
  return chunk[o + 2 + nameLength]
}

export class PacketGuard {
  private state = HEADER
  private type = 0
  private remaining = 0
  private multiplier = 1
  private lengthBytes = 0
  private idHigh = 0

  constructor (private readonly maxPacketSize: number) {}

  /** True when every byte scanned so far belongs to a complete packet: the next byte starts one. */
  get atBoundary (): boolean {
    return this.state === HEADER
  }

  /** Advances over one chunk of the stream; null while every packet so far is acceptable. */
  scan (chunk: Uint8Array): Violation | null {
    const len = chunk.length
    let i = 0
    while (i < len) {
      if (this.state === BODY) {
        const skip = len - i < this.remaining ? len - i : this.remaining
        i += skip
        this.remaining -= skip
        if (this.remaining === 0) this.state = HEADER
      } else if (this.state === HEADER) {
        // Any type byte is passed on: the parser closes on reserved types and flags [MQTT-2.2.2-2].
        this.type = (chunk[i++] as number) >> 4
        this.state = LENGTH
        this.remaining = 0
        this.multiplier = 1
        this.lengthBytes = 0
      } else if (this.state === LENGTH) {
        const b = chunk[i++] as number
        this.remaining += (b & 0x7f) * this.multiplier
        this.multiplier *= 128
        this.lengthBytes++
        if ((b & 0x80) !== 0) {
          // [MQTT-2.2.3] the Remaining Length is at most four bytes.
          if (this.lengthBytes === 4) return { kind: 'malformed', reason: 'Remaining Length longer than 4 bytes [MQTT-2.2.3]' }
          continue
        }
        const size = 1 + this.lengthBytes + this.remaining
        if (size > this.maxPacketSize) return { kind: 'too-large', size }
        // A SUBSCRIBE or UNSUBSCRIBE holding only its Packet Identifier has no topic filter
        // [MQTT-3.8.3-3], [MQTT-3.10.3-2]; mqtt-packet would hand Aedes an empty list.
        if (this.type === 8 || this.type === 10) {
          if (this.remaining <= 2) {
            return { kind: 'malformed', reason: `${this.type === 8 ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} without a topic filter [MQTT-${this.type === 8 ? '3.8.3-3' : '3.10.3-2'}]` }
          }
          this.state = ID_HIGH
        } else {
          this.state = this.remaining === 0 ? HEADER : BODY
        }
      } else if (this.state === ID_HIGH) {
        this.idHigh = chunk[i++] as number
        this.remaining--
        this.state = ID_LOW
      } else {
        // [MQTT-2.3.1-1] SUBSCRIBE and UNSUBSCRIBE carry a non-zero Packet Identifier;
        // mqtt-packet parses 0 and Aedes would acknowledge it with SUBACK/UNSUBACK 0.
        const low = chunk[i++] as number
        this.remaining--
        if ((this.idHigh | low) === 0) return { kind: 'packet-id-zero', reason: this.type === 8 ? SUBSCRIBE_ID_ZERO : UNSUBSCRIBE_ID_ZERO }
        // At least one topic-filter byte follows: a shorter packet was refused above.
        this.state = BODY
      }
    }
    return null
  }
}

type Read = (this: Duplex, size?: number) => unknown

/** A PacketGuard with what it needs to stop one connection. */
class ConnectionGuard extends PacketGuard {
  stopped = false
  first = true
  constructor (maxPacketSize: number, readonly read: Read, readonly onViolation: (v: Violation) => void) {
    super(maxPacketSize)
  }
}

const GUARD = Symbol('rtw.guard')
type Guarded = Duplex & { [GUARD]: ConnectionGuard }

// One function for every connection, its state under GUARD: no closures per idle connection.
function guardedRead (this: Guarded, size?: number): unknown {
  const g = this[GUARD]
  if (g.stopped) return null
  const chunk: unknown = g.read.call(this, size)
  if (chunk === null || !(chunk instanceof Uint8Array)) return chunk
  const v = g.scan(chunk)
  if (v === null) {
    if (!g.first) return chunk
    g.first = false
    // [MQTT-3.1.2-2] an unsupported Protocol Level gets CONNACK 0x01 before the
    // close; mqtt-packet would close without it for any level but 3, 4 and 5.
    const level = connectProtocolLevel(chunk)
    if (level === undefined || level === 3 || level === 4 || level === 5) return chunk
    g.stopped = true
    g.onViolation({ kind: 'protocol-level', level })
    this.once('finish', destroyThis)
    this.end(CONNACK_UNACCEPTABLE_PROTOCOL)
    return null
  }
  g.stopped = true
  g.onViolation(v)
  this.destroy()
  return null
}

function destroyThis (this: Duplex): void {
  this.destroy()
}

/**
 * Puts a PacketGuard in front of a connection's reader. Aedes pulls bytes with
 * `conn.read()` on 'readable' (aedes/lib/client.js), so every byte the MQTT
 * parser sees passes through here first. On a violation the chunk is withheld,
 * the connection destroyed and onViolation called once.
 */
export function guardConnection (conn: Duplex, maxPacketSize: number, onViolation: (v: Violation) => void): void {
  (conn as Guarded)[GUARD] = new ConnectionGuard(maxPacketSize, conn.read as Read, onViolation)
  conn.read = guardedRead as Duplex['read']
}
