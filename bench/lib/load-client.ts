// A lean MQTT 3.1.1 client for load, over TCP or WebSocket, so that the load
// generator is not what a broker row measures. It builds the few packets it
// sends by hand, reads only fixed headers (and the Packet Identifier of a QoS 1
// PUBLISH, to acknowledge it), and for WebSocket speaks RFC 6455 itself: one
// binary frame per write, as a browser's MQTT client sends one per batch.
// No MQTT.js, no `ws`: each costs several times this per message.
import { connect as netConnect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'

export interface Endpoint {
  transport: 'tcp' | 'ws'
  host: string
  port: number
  /** WebSocket path, e.g. /mqtt. */
  path?: string
}

export interface OpenOptions {
  clientId: string
  /** Seconds; 0 turns keepalive off. Default 300: longer than any row. */
  keepalive?: number
  /** Source address, e.g. 127.0.0.2: each has its own range of ephemeral ports. */
  localAddress?: string
}

const PUBLISH = 3
const CONNACK = 2
const PUBACK = 4
const SUBACK = 9
const PINGRESP = 13

const PINGREQ = Buffer.from([0xc0, 0x00])
const DISCONNECT = Buffer.from([0xe0, 0x00])

/** Remaining Length as its varint bytes [MQTT-2.2.3]. */
function varint (n: number): number[] {
  const out: number[] = []
  do {
    const digit = n % 128
    n = Math.floor(n / 128)
    out.push(n > 0 ? digit | 0x80 : digit)
  } while (n > 0)
  return out
}

function packet (first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first, ...varint(body.length)]), body])
}

function str (s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

export function connectPacket (clientId: string, keepalive: number): Buffer {
  // Protocol name "MQTT", level 4, flags: CleanSession [MQTT-3.1.2-6].
  return packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, keepalive >> 8, keepalive & 0xff]), str(clientId)]))
}

export function subscribePacket (filter: string, qos: 0 | 1, id: number): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), str(filter), Buffer.from([qos])]))
}

/**
 * A PUBLISH frame to copy from; for QoS 1 `idOffset` is where its Packet
 * Identifier goes, to be written into each copy.
 */
export function publishTemplate (topic: string, payload: Buffer, qos: 0 | 1): { frame: Buffer, idOffset: number } {
  const head = Buffer.concat([str(topic), Buffer.alloc(qos === 1 ? 2 : 0)])
  const frame = packet(qos === 1 ? 0x32 : 0x30, Buffer.concat([head, payload]))
  return { frame, idOffset: frame.length - payload.length - 2 }
}

/** A client-to-server WebSocket frame header: FIN, binary, masked [RFC 6455 §5.2]. */
function wsHeader (length: number): Buffer {
  // The masking key is 0: XOR with it leaves the payload as it is, and the server unmasks it all the same.
  if (length < 126) return Buffer.from([0x82, 0x80 | length, 0, 0, 0, 0])
  if (length < 65_536) return Buffer.from([0x82, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0])
  const h = Buffer.alloc(14)
  h[0] = 0x82
  h[1] = 0x80 | 127
  h.writeBigUInt64BE(BigInt(length), 2)
  return h
}

interface Waiter { type: number, resolve: (p: Buffer) => void, reject: (err: Error) => void }

export class LoadClient {
  /** PUBLISH packets received. */
  received = 0
  /** PUBACKs received (for this client's own QoS 1 publishes). */
  acked = 0
  closed = false
  error: Error | undefined
  /** Called after each read, once every packet in it was counted. */
  onRead: () => void = () => {}
  private mqttRest: Buffer | null = null
  private wsRest: Buffer | null = null
  private upgraded: boolean
  private readonly waiters: Waiter[] = []
  private readonly acks: number[] = []

  private constructor (readonly socket: Socket, private readonly ws: boolean) {
    this.upgraded = !ws
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', err => { this.error ??= err })
    socket.on('close', () => {
      this.closed = true
      for (const w of this.waiters.splice(0)) w.reject(this.error ?? new Error('connection closed'))
    })
  }

  /** Connects, upgrades to WebSocket where asked, sends CONNECT and waits for CONNACK 0. */
  static async open (ep: Endpoint, opts: OpenOptions): Promise<LoadClient> {
    const socket = netConnect({ host: ep.host, port: ep.port, localAddress: opts.localAddress })
    const client = new LoadClient(socket, ep.transport === 'ws')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    if (ep.transport === 'ws') {
      const upgraded = client.expect(-1)
      socket.write(`GET ${ep.path ?? '/mqtt'} HTTP/1.1\r\nHost: ${ep.host}:${ep.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`)
      await upgraded
    }
    const connack = client.expect(CONNACK)
    client.send(connectPacket(opts.clientId, opts.keepalive ?? 300))
    const ack = await connack
    if (ack[ack.length - 1] !== 0) {
      socket.destroy()
      throw new Error(`CONNACK ${ack[ack.length - 1] ?? '?'}`)
    }
    return client
  }

  async subscribe (filter: string, qos: 0 | 1): Promise<void> {
    const suback = this.expect(SUBACK)
    this.send(subscribePacket(filter, qos, 1))
    const p = await suback
    if (p[p.length - 1] === 0x80) throw new Error(`SUBSCRIBE ${filter} refused`)
  }

  /** PINGREQ, resolved on its PINGRESP. */
  async ping (): Promise<void> {
    const resp = this.expect(PINGRESP)
    this.send(PINGREQ)
    await resp
  }

  /** MQTT bytes: as they are on TCP, in one binary frame on WebSocket. */
  send (data: Buffer): void {
    if (this.closed) return
    if (this.ws) {
      this.socket.cork()
      this.socket.write(wsHeader(data.length))
      this.socket.write(data)
      this.socket.uncork()
    } else {
      this.socket.write(data)
    }
  }

  /** DISCONNECT, then the end of the socket. */
  disconnect (): void {
    if (this.closed) return
    this.send(DISCONNECT)
    this.socket.end()
  }

  destroy (): void {
    this.socket.destroy()
  }

  /** The next control packet of this type (-1: the WebSocket handshake's answer). */
  private async expect (type: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.closed) reject(this.error ?? new Error('connection closed'))
      else this.waiters.push({ type, resolve, reject })
    })
  }

  private settle (type: number, p: Buffer): void {
    const i = this.waiters.findIndex(w => w.type === type)
    if (i !== -1) this.waiters.splice(i, 1)[0]?.resolve(p)
  }

  private onData (chunk: Buffer): void {
    if (!this.upgraded) {
      const all = this.wsRest === null ? chunk : Buffer.concat([this.wsRest, chunk])
      const end = all.indexOf('\r\n\r\n')
      if (end === -1) { this.wsRest = all; return }
      this.wsRest = null
      const head = all.toString('latin1', 0, end)
      if (!head.startsWith('HTTP/1.1 101')) {
        this.error = new Error(`WebSocket upgrade refused: ${head.split('\r\n')[0] ?? ''}`)
        this.socket.destroy()
        return
      }
      this.upgraded = true
      this.settle(-1, all)
      chunk = all.subarray(end + 4)
      if (chunk.length === 0) return
    }
    if (this.ws) this.readFrames(chunk)
    else this.readMqtt(chunk)
    if (this.acks.length > 0) this.flushAcks()
    this.onRead()
  }

  /** Server frames are never masked [RFC 6455 §5.1]. */
  private readFrames (chunk: Buffer): void {
    const buf = this.wsRest === null ? chunk : Buffer.concat([this.wsRest, chunk])
    this.wsRest = null
    let o = 0
    while (buf.length - o >= 2) {
      const opcode = (buf[o] as number) & 0x0f
      let len = (buf[o + 1] as number) & 0x7f
      let p = o + 2
      if (len === 126) {
        if (buf.length - o < 4) break
        len = buf.readUInt16BE(o + 2)
        p = o + 4
      } else if (len === 127) {
        if (buf.length - o < 10) break
        len = Number(buf.readBigUInt64BE(o + 2))
        p = o + 10
      }
      if (buf.length - p < len) break
      const payload = buf.subarray(p, p + len)
      o = p + len
      if (opcode === 2 || opcode === 0) this.readMqtt(payload)
      else if (opcode === 9) this.pong(payload)
      else if (opcode === 8) { this.socket.destroy(); return }
    }
    if (o < buf.length) this.wsRest = buf.subarray(o)
  }

  private pong (payload: Buffer): void {
    this.socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0]), payload]))
  }

  private readMqtt (chunk: Buffer): void {
    const buf = this.mqttRest === null ? chunk : Buffer.concat([this.mqttRest, chunk])
    this.mqttRest = null
    const len = buf.length
    let o = 0
    while (o < len) {
      let remaining = 0
      let multiplier = 1
      let p = o + 1
      let b = 0x80
      while ((b & 0x80) !== 0 && p < len) {
        b = buf[p++] as number
        remaining += (b & 0x7f) * multiplier
        multiplier *= 128
      }
      if ((b & 0x80) !== 0 || p + remaining > len) break
      const first = buf[o] as number
      const type = first >> 4
      if (type === PUBLISH) {
        this.received++
        if ((first & 0x06) !== 0) {
          const topicLength = ((buf[p] as number) << 8) | (buf[p + 1] as number)
          const idAt = p + 2 + topicLength
          this.acks.push(((buf[idAt] as number) << 8) | (buf[idAt + 1] as number))
        }
      } else if (type === PUBACK) {
        this.acked++
      } else {
        this.settle(type, buf.subarray(o, p + remaining))
      }
      o = p + remaining
    }
    if (o < len) this.mqttRest = Buffer.from(buf.subarray(o))
  }

  /** The PUBACKs a read owed, in one write. */
  private flushAcks (): void {
    const out = Buffer.allocUnsafe(this.acks.length * 4)
    let o = 0
    for (const id of this.acks) {
      out[o++] = 0x40
      out[o++] = 2
      out[o++] = id >> 8
      out[o++] = id & 0xff
    }
    this.acks.length = 0
    this.send(out)
  }
}
