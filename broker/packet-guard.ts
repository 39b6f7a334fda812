// The MQTT packet-size guard. It walks the fixed header of every packet in the
// raw byte stream (type byte, then the Remaining Length varint [MQTT-2.2.3]) and
// stops the connection as soon as a packet announces more than maxPacketSize
// bytes, or its Remaining Length runs past 4 bytes, before the packet parser
// has buffered any of that packet's body. It never copies a byte: payloads are
// skipped by arithmetic.
import type { Duplex } from 'node:stream'

const HEADER = 0
const LENGTH = 1
const BODY = 2

export type Violation =
  | { kind: 'too-large', size: number }
  | { kind: 'malformed-length' }

export class PacketGuard {
  private state = HEADER
  private remaining = 0
  private multiplier = 1
  private lengthBytes = 0

  constructor (private readonly maxPacketSize: number) {}

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
        i++
        this.state = LENGTH
        this.remaining = 0
        this.multiplier = 1
        this.lengthBytes = 0
      } else {
        const b = chunk[i++] as number
        this.remaining += (b & 0x7f) * this.multiplier
        this.multiplier *= 128
        this.lengthBytes++
        if ((b & 0x80) !== 0) {
          // [MQTT-2.2.3] the Remaining Length is at most four bytes.
          if (this.lengthBytes === 4) return { kind: 'malformed-length' }
          continue
        }
        const size = 1 + this.lengthBytes + this.remaining
        if (size > this.maxPacketSize) return { kind: 'too-large', size }
        this.state = this.remaining === 0 ? HEADER : BODY
      }
    }
    return null
  }
}

/**
 * Puts a PacketGuard in front of a connection's reader. Aedes pulls bytes with
 * `conn.read()` on 'readable' (aedes/lib/client.js), so every byte the MQTT
 * parser sees passes through here first. On a violation the chunk is withheld,
 * the connection destroyed and onViolation called once.
 */
export function guardConnection (conn: Duplex, maxPacketSize: number, onViolation: (v: Violation) => void): void {
  const guard = new PacketGuard(maxPacketSize)
  const read = conn.read
  let stopped = false
  conn.read = function guardedRead (this: Duplex, size?: number) {
    if (stopped) return null
    const chunk: unknown = read.call(this, size)
    if (chunk === null || !(chunk instanceof Uint8Array)) return chunk
    const v = guard.scan(chunk)
    if (v === null) return chunk
    stopped = true
    onViolation(v)
    this.destroy()
    return null
  }
}
