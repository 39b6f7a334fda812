// MQTT over WebSocket framed by the gateway itself (broker/ws-stream.ts): the
// handshake, fragmented and split frames, Ping/Pong, Close, and the frames it
// refuses, each spoken byte by byte over a real socket.
import { connect as netConnect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectPacket, subscribePacket } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

interface Frame { fin: boolean, opcode: number, payload: Buffer }

/** A client frame: masked with a random key unless told otherwise [RFC 6455 §5.2]. */
function frame (opcode: number, payload: Buffer, o: { fin?: boolean, mask?: boolean, rsv?: number, length?: number } = {}): Buffer {
  const len = o.length ?? payload.length
  const head = [((o.fin ?? true) ? 0x80 : 0) | (o.rsv ?? 0) | opcode]
  const masked = o.mask ?? true
  if (len < 126) head.push((masked ? 0x80 : 0) | len)
  else if (len < 65_536) head.push((masked ? 0x80 : 0) | 126, len >> 8, len & 0xff)
  else head.push((masked ? 0x80 : 0) | 127, 0, 0, 0, 0, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff)
  if (!masked) return Buffer.concat([Buffer.from(head), payload])
  const key = randomBytes(4)
  const body = Buffer.from(payload.map((b, i) => b ^ (key[i & 3] as number)))
  return Buffer.concat([Buffer.from(head), key, body])
}

class WsPeer {
  readonly frames: Frame[] = []
  closed = false
  head = ''
  private rest = Buffer.alloc(0)
  private upgraded = false

  constructor (readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { this.closed = true })
  }

  private onData (chunk: Buffer): void {
    this.rest = Buffer.concat([this.rest, chunk])
    if (!this.upgraded) {
      const end = this.rest.indexOf('\r\n\r\n')
      if (end === -1) return
      this.head = this.rest.toString('latin1', 0, end)
      this.rest = this.rest.subarray(end + 4)
      this.upgraded = true
    }
    for (;;) {
      if (this.rest.length < 2) return
      const b1 = this.rest[1] as number
      expect(b1 & 0x80).toBe(0) // server frames are never masked
      let len = b1 & 0x7f
      let at = 2
      if (len === 126) { len = this.rest.readUInt16BE(2); at = 4 }
      if (this.rest.length < at + len) return
      const b0 = this.rest[0] as number
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: Buffer.from(this.rest.subarray(at, at + len)) })
      this.rest = this.rest.subarray(at + len)
    }
  }

  async next (opcode: number): Promise<Frame> {
    return await waitFor(() => this.frames.find(f => f.opcode === opcode), { what: `a frame with opcode ${opcode}` })
  }
}

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

async function upgrade (gw: TestGateway, headers: Record<string, string> = {}, method = 'GET'): Promise<WsPeer> {
  const socket = netConnect({ host: '127.0.0.1', port: gw.httpPort, noDelay: true })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const peer = new WsPeer(socket)
  const all: Record<string, string> = {
    Host: `127.0.0.1:${gw.httpPort}`, Upgrade: 'websocket', Connection: 'Upgrade',
    'Sec-WebSocket-Key': SAMPLE_KEY, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'mqtt', ...headers
  }
  socket.write(`${method} ${gw.config.wsPath} HTTP/1.1\r\n${Object.entries(all).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  await waitFor(() => peer.head !== '' || peer.closed, { what: 'the handshake answer' })
  return peer
}

describe('MQTT over WebSocket, framed by the gateway', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ bodyLimit: 1024, maxPacketSize: 2048 }) })
  afterAll(async () => { await gw.close() })

  it('answers the handshake with the RFC 6455 accept key and the mqtt subprotocol', async () => {
    const peer = await upgrade(gw)
    expect(peer.head).toMatch(/^HTTP\/1\.1 101 /)
    // The example of RFC 6455 §1.3.
    expect(peer.head).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
    expect(peer.head).toContain('Sec-WebSocket-Protocol: mqtt')
    expect(peer.head.toLowerCase()).not.toContain('sec-websocket-extensions')
    peer.socket.destroy()
    const old = await upgrade(gw, { 'Sec-WebSocket-Protocol': 'mqttv3.1', 'Sec-WebSocket-Extensions': 'permessage-deflate' })
    expect(old.head).toContain('Sec-WebSocket-Protocol: mqttv3.1')
    expect(old.head.toLowerCase()).not.toContain('sec-websocket-extensions')
    old.socket.destroy()
    const none = await upgrade(gw, { 'Sec-WebSocket-Protocol': '' })
    expect(none.head).toMatch(/^HTTP\/1\.1 101 /)
    expect(none.head).not.toContain('Sec-WebSocket-Protocol')
    none.socket.destroy()
  })

  it('refuses a bad version or key with 400, as ws did', async () => {
    const version = await upgrade(gw, { 'Sec-WebSocket-Version': '12' })
    expect(version.head).toMatch(/^HTTP\/1\.1 400 /)
    expect(version.head).toContain('Sec-WebSocket-Version: 13, 8')
    const key = await upgrade(gw, { 'Sec-WebSocket-Key': 'short' })
    expect(key.head).toMatch(/^HTTP\/1\.1 400 /)
    await waitFor(() => version.closed && key.closed, { what: 'both refused sockets closed' })
  })

  it('takes a CONNECT in fragments with split headers and a Ping between them, and answers in binary frames', async () => {
    const peer = await upgrade(gw)
    const connect = connectPacket('ws-fragments')
    const first = frame(2, connect.subarray(0, 5), { fin: false })
    const ping = frame(9, Buffer.from('are you there'))
    const last = frame(0, connect.subarray(5))
    const bytes = Buffer.concat([first, ping, last])
    // One byte at a time: every header and mask is split across reads.
    for (let i = 0; i < bytes.length; i++) {
      peer.socket.write(bytes.subarray(i, i + 1))
      await new Promise(resolve => setImmediate(resolve))
    }
    const pong = await peer.next(10)
    expect(pong.payload.toString()).toBe('are you there')
    const connack = await peer.next(2)
    expect([...connack.payload]).toEqual([0x20, 0x02, 0x00, 0x00])
    peer.socket.destroy()
  })

  it('delivers a PUBLISH to a WebSocket subscriber in one binary frame', async () => {
    const peer = await upgrade(gw)
    peer.socket.write(frame(2, Buffer.concat([connectPacket('ws-sub'), subscribePacket(['ws/framing'])])))
    await waitFor(() => peer.frames.some(f => f.payload.includes(0x90)), { what: 'SUBACK' })
    const pub = await mqtt.connectAsync(gw.mqttUrl, { clientId: 'ws-pub' })
    await pub.publishAsync('ws/framing', 'hello over ws')
    const delivery = await waitFor(() => peer.frames.find(f => f.opcode === 2 && f.payload[0] === 0x30), { what: 'the PUBLISH' })
    expect(delivery.fin).toBe(true)
    expect(delivery.payload.subarray(delivery.payload.length - 13).toString()).toBe('hello over ws')
    await pub.endAsync()
    peer.socket.destroy()
  })

  it('answers a Close with Close 1000 and closes the connection', async () => {
    const peer = await upgrade(gw)
    peer.socket.write(frame(2, connectPacket('ws-close')))
    await peer.next(2)
    peer.socket.write(frame(8, Buffer.from([0x03, 0xe8])))
    const close = await peer.next(8)
    expect(close.payload.readUInt16BE(0)).toBe(1000)
    await waitFor(() => peer.closed, { what: 'the socket closed' })
  })

  for (const [what, bytes, code] of [
    ['a text frame [MQTT-6.0.0-1]', frame(1, Buffer.from('hi')), 1003],
    ['an unmasked frame', frame(2, connectPacket('x'), { mask: false }), 1002],
    ['a frame with RSV1 set (no extension was agreed)', frame(2, connectPacket('x'), { rsv: 0x40 }), 1002],
    ['a continuation with no message to continue', frame(0, connectPacket('x')), 1002],
    ['a message over the payload limit, before its body arrives', frame(2, Buffer.alloc(0), { length: 70_000 }), 1009]
  ] as const) {
    it(`closes on ${what} with Close ${code}`, async () => {
      const peer = await upgrade(gw)
      peer.socket.write(bytes)
      const close = await peer.next(8)
      expect(close.payload.readUInt16BE(0)).toBe(code)
      await waitFor(() => peer.closed, { what: 'the socket closed' })
    })
  }
})
