// A raw MQTT 3.1.1 client over a plain (or TLS) socket, for tests that must send
// bytes no well-behaved client would: oversized, truncated or malformed packets.
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { waitFor } from './wait.js'

export const generate = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as Packet)

export function connectPacket (clientId: string, extra: Record<string, unknown> = {}): Buffer {
  return generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60, ...extra })
}

export function publishPacket (topic: string, payload: string | Buffer = 'x', qos: 0 | 1 = 0, messageId = 1): Buffer {
  return generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId } : {}) })
}

export function subscribePacket (filters: string[], messageId = 1): Buffer {
  return generate({ cmd: 'subscribe', messageId, subscriptions: filters.map(topic => ({ topic, qos: 0 })) })
}

/**
 * Builds a PUBLISH (QoS 0) whose topic is given as raw bytes, so tests can put
 * ill-formed UTF-8 or U+0000 on the wire.
 */
export function rawTopicPublish (topic: Buffer, payload = Buffer.from('x')): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 255]), topic, payload])
  return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body])
}

/** A SUBSCRIBE whose single filter is given as raw bytes. */
export function rawFilterSubscribe (filter: Buffer, messageId = 1): Buffer {
  const body = Buffer.concat([Buffer.from([messageId >> 8, messageId & 255, filter.length >> 8, filter.length & 255]), filter, Buffer.from([0])])
  return Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body])
}

export function remainingLength (n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

export class RawClient {
  readonly packets: Packet[] = []
  closed = false
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 })
  private readonly closedPromise: Promise<void>

  constructor (readonly socket: Socket) {
    this.parser.on('packet', p => this.packets.push(p))
    this.parser.on('error', () => {})
    socket.on('data', (c: Buffer) => this.parser.parse(c))
    socket.on('error', () => {})
    this.closedPromise = new Promise(resolve => socket.once('close', () => { this.closed = true; resolve() }))
  }

  send (bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  /** The first received packet of this type, waiting up to timeoutMs. */
  async next (cmd: string, timeoutMs = 5_000): Promise<Packet> {
    return await waitFor(() => this.packets.find(p => p.cmd === cmd), { timeoutMs, what: `${cmd} from the gateway` })
  }

  /** Resolves true once the gateway closed the connection, false if it is still open after timeoutMs. */
  async closedWithin (timeoutMs = 5_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
    try {
      return await Promise.race([this.closedPromise.then(() => true), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  destroy (): void {
    this.socket.destroy()
  }
}

/** Opens a TCP connection; with clientId, also sends CONNECT and waits for a successful CONNACK. */
export async function rawConnect (port: number, clientId?: string, host = '127.0.0.1'): Promise<RawClient> {
  const socket = netConnect({ port, host, noDelay: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const c = new RawClient(socket)
  if (clientId !== undefined) {
    c.send(connectPacket(clientId))
    const connack = await c.next('connack') as { returnCode?: number }
    if (connack.returnCode !== 0) throw new Error(`CONNACK ${String(connack.returnCode)}`)
  }
  return c
}
