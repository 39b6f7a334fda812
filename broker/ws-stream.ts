// MQTT over WebSocket [MQTT-6.0.0] on the upgraded socket itself. The
// handshake is answered here (RFC 6455 §4.2), and from then on the socket is
// the MQTT connection, as a TCP one is: its reads are unframed in place (the
// client's masking undone, control frames answered) before the packet guard
// and Aedes's parser see them, and everything written in one turn goes out as
// one binary frame (net/write-batch.ts). Through `ws`, a WebSocket object, its
// receiver and sender streams and a Duplex for Aedes stood between the socket
// and the broker: about 4 KiB per idle connection, and per message a frame
// object, a copy and a callback chain that made WebSocket fan-out cost three
// times TCP's.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { batchWrites } from '../net/write-batch.js'

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export type Handshake =
  | { ok: true, response: string }
  | { ok: false, status: number, message: string, headers?: string }

/**
 * The answer to an upgrade request: the 101 response, with the first of
 * `protocols` the client offered (none when it offered none of them), or why
 * it is refused, as `ws` refused it (405, 400).
 */
export function answerHandshake (req: IncomingMessage, protocols: readonly string[]): Handshake {
  if (req.method !== 'GET') return { ok: false, status: 405, message: 'Invalid HTTP method' }
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return { ok: false, status: 400, message: 'Invalid Upgrade header' }
  const key = req.headers['sec-websocket-key']
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return { ok: false, status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' }
  const version = req.headers['sec-websocket-version']
  if (version !== '13' && version !== '8') {
    return { ok: false, status: 400, message: 'Missing or invalid Sec-WebSocket-Version header', headers: 'Sec-WebSocket-Version: 13, 8\r\n' }
  }
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map(p => p.trim())
  const protocol = protocols.find(p => offered.includes(p))
  const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64')
  return {
    ok: true,
    response: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n${protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`}\r\n`
  }
}

/** A server frame header: FIN and binary, unmasked [RFC 6455 §5.2]. */
function binaryHeader (length: number): Buffer {
  if (length < 126) return Buffer.from([0x82, length])
  if (length < 65_536) return Buffer.from([0x82, 126, length >> 8, length & 0xff])
  const h = Buffer.allocUnsafe(10)
  h[0] = 0x82
  h[1] = 127
  h.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2)
  h.writeUInt32BE(length >>> 0, 6)
  return h
}

const closeFrame = (code: number): Buffer => Buffer.from([0x88, 0x02, code >> 8, code & 0xff])
/** Close, 1000 normal closure [RFC 6455 §7.4.1]: sent before the server ends a connection. */
const CLOSE_NORMAL = closeFrame(1000)
const FRAMING = { header: binaryHeader, closing: CLOSE_NORMAL }

const HEADER = 0
const PAYLOAD = 1
const CLOSED = 2

type Read = (this: Socket, size?: number) => unknown

/** The reading side of one connection: where it is in the frame stream. */
class FrameReader {
  state = HEADER
  /** Payload bytes left in the current frame. */
  remaining = 0
  /** Opcode of the data message being read (1 or 2), and of the control frame inside it, if any. */
  opcode = 0
  controlOpcode = 0
  /** Inside a fragmented data message. */
  fragmented = false
  /** Bytes of the current data message so far, against maxPayload. */
  messageBytes = 0
  mask = 0
  maskAt = 0
  /** A header split across reads, rare: kept until the rest arrives. */
  partial: Buffer | null = null
  /** The payload of a control frame being read. */
  control: Buffer | null = null
  controlAt = 0

  constructor (readonly read: Read, readonly write: Socket['write'], readonly maxPayload: number) {}
}

const READER = Symbol('rtw.ws')
type WsSocket = Socket & { [READER]: FrameReader }

/** A protocol violation: the Close code (RFC 6455 §7.4.1) and the error the broker logs. */
function fail (socket: WsSocket, r: FrameReader, code: number, reason: string): void {
  r.state = CLOSED
  if (!socket.destroyed) r.write.call(socket, closeFrame(code))
  socket.destroy(new Error(`WebSocket: ${reason}`))
}

/**
 * Unframes `buf` in place: the MQTT bytes it holds are unmasked and moved to
 * its start, and their count returned. Control frames are answered here;
 * a violation closes the connection and returns -1.
 */
function unframe (socket: WsSocket, r: FrameReader, buf: Buffer): number {
  if (r.partial !== null) {
    buf = Buffer.concat([r.partial, buf])
    r.partial = null
  }
  const len = buf.length
  let i = 0
  let w = 0
  while (i < len) {
    if (r.state === CLOSED) return w
    if (r.state === HEADER) {
      if (len - i < 2) { r.partial = Buffer.from(buf.subarray(i)); break }
      const b0 = buf[i] as number
      const b1 = buf[i + 1] as number
      let size = b1 & 0x7f
      const at = size === 126 ? 4 : size === 127 ? 10 : 2
      if (len - i < at + 4) { r.partial = Buffer.from(buf.subarray(i)); break }
      // No extension was negotiated, so RSV1-3 are 0 [RFC 6455 §5.2]; clients mask every frame [§5.1].
      if ((b0 & 0x70) !== 0) { fail(socket, r, 1002, 'RSV bits set'); return -1 }
      if ((b1 & 0x80) === 0) { fail(socket, r, 1002, 'unmasked client frame'); return -1 }
      if (size === 126) size = buf.readUInt16BE(i + 2)
      else if (size === 127) {
        if (buf.readUInt32BE(i + 2) !== 0) { fail(socket, r, 1009, 'frame over maxPayload'); return -1 }
        size = buf.readUInt32BE(i + 6)
      }
      const opcode = b0 & 0x0f
      const fin = (b0 & 0x80) !== 0
      if (opcode >= 8) {
        if (opcode > 10 || !fin || size > 125) { fail(socket, r, 1002, 'invalid control frame'); return -1 }
      } else if (opcode === 1 || (opcode === 0 && r.fragmented && r.opcode === 1)) {
        // MQTT over WebSocket uses binary frames [MQTT-6.0.0-1].
        fail(socket, r, 1003, 'text frame on an MQTT WebSocket')
        return -1
      } else if (opcode === 2) {
        if (r.fragmented) { fail(socket, r, 1002, 'new message inside a fragmented one'); return -1 }
        r.messageBytes = 0
        r.fragmented = !fin
      } else if (opcode === 0) {
        if (!r.fragmented) { fail(socket, r, 1002, 'continuation without a message'); return -1 }
        r.fragmented = !fin
      } else {
        fail(socket, r, 1002, `reserved opcode ${opcode}`)
        return -1
      }
      if (opcode < 8) {
        r.messageBytes += size
        if (r.messageBytes > r.maxPayload) { fail(socket, r, 1009, 'message over maxPayload'); return -1 }
      }
      if (opcode >= 8) r.controlOpcode = opcode
      else if (opcode !== 0) r.opcode = opcode
      r.mask = buf.readUInt32BE(i + at)
      r.maskAt = 0
      r.remaining = size
      i += at + 4
      if (opcode >= 8) {
        r.control = Buffer.allocUnsafe(size)
        r.controlAt = 0
      } else {
        r.control = null
      }
      r.state = PAYLOAD
      if (size === 0 && r.control !== null) { control(socket, r); continue }
      if (size === 0) { r.state = HEADER; continue }
    }
    // PAYLOAD: unmask, and for data move it down to w.
    const n = len - i < r.remaining ? len - i : r.remaining
    const mask = r.mask
    let k = r.maskAt
    const out = r.control ?? buf
    let o = r.control === null ? w : r.controlAt
    for (const end = i + n; i < end; i++, k++) {
      out[o++] = (buf[i] as number) ^ ((mask >>> (24 - ((k & 3) << 3))) & 0xff)
    }
    r.maskAt = k
    r.remaining -= n
    if (r.control === null) w = o
    else r.controlAt = o
    if (r.remaining === 0) {
      if (r.control !== null) control(socket, r)
      else r.state = HEADER
    }
  }
  return w
}

/**
 * A whole control frame: Ping gets its Pong [RFC 6455 §5.5.2]. A Close is
 * answered with Close 1000 and the connection closed [§5.5.1]: the client
 * expects nothing more, and Aedes sees the socket close as a TCP one would.
 */
function control (socket: WsSocket, r: FrameReader): void {
  const payload = r.control as Buffer
  r.control = null
  r.state = HEADER
  if (r.controlOpcode === 9) {
    r.write.call(socket, Buffer.concat([Buffer.from([0x8a, payload.length]), payload]))
  } else if (r.controlOpcode === 8) {
    if (payload.length === 1) { fail(socket, r, 1002, 'invalid Close frame'); return }
    r.state = CLOSED
    r.write.call(socket, CLOSE_NORMAL)
    socket.destroy()
  }
}

/** socket.read, with the WebSocket framing taken out. */
function unframedRead (this: WsSocket, size?: number): unknown {
  const r = this[READER]
  for (;;) {
    const chunk = r.read.call(this, size)
    if (chunk === null || !Buffer.isBuffer(chunk)) return chunk
    if (r.state === CLOSED) continue
    const n = unframe(this, r, chunk)
    if (n < 0) return null
    if (n > 0) return n === chunk.length ? chunk : chunk.subarray(0, n)
  }
}

/** True for a connection serveWebSocket made: MQTT over WebSocket, not over TCP. */
export function isWebSocket (conn: Duplex): boolean {
  return READER in conn
}

/**
 * Makes an upgraded socket the MQTT connection: `head` (bytes read past the
 * handshake) comes first, frames over `maxPayload` bytes close it (1009).
 */
export function serveWebSocket (socket: Socket, head: Buffer, maxPayload: number): Socket {
  socket.setTimeout(0)
  socket.setNoDelay(true)
  const ws = socket as WsSocket
  ws[READER] = new FrameReader(socket.read as Read, socket.write, maxPayload)
  socket.read = unframedRead as Socket['read']
  batchWrites(socket, FRAMING)
  if (head.length > 0) socket.unshift(head)
  return socket
}
