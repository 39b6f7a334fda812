// Every read or write of a field that Aedes (or Node's streams) does not
// publish, in one file. The gateway's fast lanes and conformance fixes depend
// on them; Aedes and mqtt-packet are pinned to exact versions in package.json,
// their patches (patches/) are applied by npm install, and checkInternals()
// probes a throwaway client at start-up, so an upgrade that renames one of
// these, or a missing patch, fails at once with the field's name, instead of
// silently shutting a lane or losing messages.
import { Duplex, Transform, type Readable } from 'node:stream'
import type { Aedes, Client, PublishPacket } from 'aedes'
import type { Packet } from 'mqtt-packet'
import { topicMatches } from '../core/topics.js'
import { qos0PublishFrame } from './publish-frame.js'

/** The private parts of an Aedes client read here (aedes/lib/client.js, handlers/connect.js, handlers/index.js). */
interface ClientInternals {
  connackSent: boolean
  connected: boolean
  _keepaliveInterval: number
  _keepaliveTimer: NodeJS.Timeout | null
  /** Packets that came before CONNACK, waiting; null once they were handled. */
  _parser: { _queue: unknown[] | null, prependListener: (event: 'packet', fn: (packet: Packet) => void) => unknown }
  /** The client's subscriptions by filter, with their granted QoS. */
  subscriptions: Record<string, { qos: number }>
}

interface BrokerInternals {
  /** The router Aedes hands every publish to (emitPacket in aedes.js), given or its own. */
  mq: { emit: (packet: PublishPacket, done: (err?: Error | null) => void) => void }
  /** The connected clients by id. */
  clients: Record<string, Client | undefined>
  persistence: {
    createRetainedStream: (pattern: string) => AsyncIterable<PublishPacket>
    /** What Aedes's SUBSCRIBE handler sends the new subscriber (handlers/subscribe.js). */
    createRetainedStreamCombi: (patterns: string[]) => Readable
  }
}

const inside = (client: Client): ClientInternals => client as unknown as ClientInternals

/**
 * Replies may skip Aedes's parser once the client is connected and every
 * packet it sent before CONNACK was handled: before that, Aedes holds packets
 * back, and one taken early would overtake them.
 */
export function readyForReplies (client: Client): boolean {
  const c = inside(client)
  return c.connackSent && c.connected && c._parser._queue === null
}

/** What Aedes does on each packet it handles (handlers/index.js): the keep-alive restarts [MQTT-3.1.2-24]. */
export function refreshKeepalive (client: Client): void {
  const c = inside(client)
  if (c._keepaliveInterval > 0) c._keepaliveTimer?.refresh()
}

/** Runs `fn` on each packet the client's parser emits, before Aedes handles it (handlers/index.js). */
export function beforeEachPacket (client: Client, fn: (packet: Packet) => void): void {
  inside(client)._parser.prependListener('packet', fn)
}

/** The filters of a session restored with clean=false: Aedes restores them without a 'subscribe' event. */
export function heldFilters (client: Client): string[] {
  return Object.keys(inside(client).subscriptions)
}

type Routed = (packet: PublishPacket & { clientId?: string }) => void

/**
 * Calls `before` and `after` around each hand-over of a packet to Aedes's
 * router: the one point every routed publish passes, in the order they are
 * routed, once a retained one was stored. The packet is Aedes's copy, naming
 * its publisher's `clientId` when a client published it. With no subscriber
 * the router may finish the publish (and Aedes call its callback) before
 * `after` runs.
 */
export function aroundEachRoute (aedes: Aedes, before: Routed, after: Routed): void {
  const mq = (aedes as unknown as BrokerInternals).mq
  const emit = mq.emit.bind(mq)
  mq.emit = (packet, done) => {
    before(packet)
    emit(packet, done)
    after(packet)
  }
}

/** The connected client with this id, or null (the gateway's own publishes name none). */
export function clientById (aedes: Aedes, id: string | undefined): Client | null {
  return id === undefined ? null : (aedes as unknown as BrokerInternals).clients[id] ?? null
}

/** The retained messages whose topics match `pattern` (Aedes's persistence has no public accessor). */
export function retainedStream (aedes: Aedes, pattern: string): AsyncIterable<PublishPacket> {
  return (aedes as unknown as BrokerInternals).persistence.createRetainedStream(pattern)
}

/**
 * [MQTT-4.7.2-1] A filter starting with "#" or "+" must not match a "$" topic.
 * Aedes keeps to it for live messages but not for retained ones: a SUBSCRIBE
 * to "#" got every retained $SYS message. The retained stream Aedes asks its
 * persistence for (whichever persistence it is) is filtered here with the
 * rule's own matcher.
 */
export function conformRetainedDelivery (aedes: Aedes): void {
  const persistence = (aedes as unknown as BrokerInternals).persistence
  const combi = persistence.createRetainedStreamCombi.bind(persistence)
  persistence.createRetainedStreamCombi = patterns => {
    const stream = combi(patterns)
    if (!patterns.some(p => p.charCodeAt(0) === 35 || p.charCodeAt(0) === 43)) return stream
    return stream.pipe(new Transform({
      objectMode: true,
      transform (packet: PublishPacket, _enc, cb) {
        if (packet.topic.charCodeAt(0) !== 36 || patterns.some(p => topicMatches(p, packet.topic))) cb(null, packet)
        else cb()
      }
    }))
  }
}

/**
 * Lets a stream queue up to `bytes` before write() reports backpressure. Node
 * has no public setter for a stream's high-water mark after construction.
 */
export function raiseWriteHighWater (conn: Duplex, bytes: number): void {
  const ws = (conn as unknown as { _writableState?: { highWaterMark?: unknown } })._writableState
  if (ws !== undefined && typeof ws.highWaterMark === 'number' && ws.highWaterMark < bytes) ws.highWaterMark = bytes
}

/** What Aedes's QoS 0 delivery reads and calls on a client (aedes/lib/client.js deliver0, lib/write.js). */
interface DeliveryInternals {
  id: string | null
  connecting: boolean
  connected: boolean
  errored: boolean
  conn: Duplex
  /** Broker id → the counter of the last message delivered from it (the patched dedupe). */
  duplicates: Record<string, number>
  broker: { authorizeForward: (client: Client, packet: PublishPacket) => PublishPacket | null | undefined }
  deliver0: (this: DeliveryInternals, packet: DeliveredPacket, cb: () => void) => void
  _onError: (err?: Error | null) => void
  waitForDrain: (cb: (err?: Error | null) => void) => void
}

type DeliveredPacket = PublishPacket & { brokerId?: string | null, brokerCounter?: number, clientId?: string, nl?: boolean }

// The frame of the message being fanned out: mqemitter hands one message to
// all its subscribers in a row, each a copy with the same topic and payload.
// Forgotten with the turn's callbacks, so a payload buffer is never trusted
// past the turn it was framed in.
let framed: { topic: string, payload: unknown, flags: number, frame: Buffer } | undefined
let callbacks: Array<() => void> = []

function runCallbacks (): void {
  const cbs = callbacks
  callbacks = []
  framed = undefined
  for (const cb of cbs) cb()
}

/** Aedes calls back each delivery a turn later ("to clear stacks"); one setImmediate for all of a turn's. */
function later (cb: () => void): void {
  if (callbacks.push(cb) === 1) setImmediate(runCallbacks)
}

function frameOf (packet: DeliveredPacket): Buffer {
  const payload = packet.payload
  const flags = (packet.retain ? 1 : 0) | (packet.dup ? 2 : 0)
  if (framed !== undefined && framed.payload === payload && framed.topic === packet.topic && framed.flags === flags) return framed.frame
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload ?? Buffer.alloc(0)
  const frame = qos0PublishFrame(packet.topic, bytes, packet.retain, packet.dup)
  framed = { topic: packet.topic, payload, flags, frame }
  return frame
}

/**
 * Aedes's deliver0 (aedes/lib/client.js), the same decisions in the same
 * order, written for every client once instead of as closures per client:
 * no-local, the patched dedupe, authorizeForward (the pipeline's delivery
 * stages), then the write, waiting for 'drain' when the socket says so. Where
 * Aedes copied the packet, waited a turn and had mqtt-packet write it as five
 * chunks, the frame is built once per message for all its subscribers
 * (publish-frame.ts) and written at once into the turn's batch (net/write-batch.ts),
 * which goes out when Aedes's turn-later write would have.
 */
function deliverQoS0 (this: DeliveryInternals, packet: DeliveredPacket, cb: () => void): void {
  if (packet.clientId === this.id && packet.nl === true) { later(cb); return }
  const id = packet.brokerId
  if (id) {
    if (this.duplicates[id] === packet.brokerCounter) { later(cb); return }
    this.duplicates[id] = packet.brokerCounter as number
  }
  const toForward = this.broker.authorizeForward(this as unknown as Client, packet)
  if (!toForward) { later(cb); return }
  const done = (err?: Error | null): void => {
    this._onError(err)
    cb()
  }
  if (!this.connecting && !this.connected) {
    later(() => done(new Error('connection closed')))
    return
  }
  let frame: Buffer
  try {
    frame = frameOf(toForward)
  } catch {
    later(() => done(new Error('packet received not valid')))
    return
  }
  if (!this.conn.write(frame) && !this.errored) this.waitForDrain(done)
  else later(cb)
}

/** Gives the client the QoS 0 delivery above in place of Aedes's own. */
export function frameQoS0Deliveries (client: Client): void {
  (client as unknown as DeliveryInternals).deliver0 = deliverQoS0
}

/**
 * Probes the fields above on a client that never connects, and on the broker.
 * Returns what is missing or of another type: empty when all is as expected.
 */
export function checkInternals (aedes: Aedes): string[] {
  const conn = new Duplex({ read () {}, write (_c, _e, cb) { cb() } })
  const client = aedes.handle(conn)
  const c = client as unknown as Record<string, unknown>
  const problems: string[] = []
  const expect = (what: string, ok: boolean): void => { if (!ok) problems.push(what) }
  expect('client.connackSent (boolean)', typeof c.connackSent === 'boolean')
  expect('client.connected (boolean)', typeof c.connected === 'boolean')
  expect('client._keepaliveInterval (number)', typeof c._keepaliveInterval === 'number')
  expect('client._keepaliveTimer (null before CONNECT)', c._keepaliveTimer === null)
  const parser = c._parser as { _queue?: unknown } | undefined
  expect('client._parser._queue (an array before CONNECT)', Array.isArray(parser?._queue))
  expect('client._parser.prependListener (an EventEmitter)', typeof (parser as { prependListener?: unknown } | undefined)?.prependListener === 'function')
  // patches/aedes+1.2.0.patch (applied by npm install) fixes the QoS of overlapping subscriptions' copies.
  expect('client.deliverQoS from patches/aedes+1.2.0.patch (run npm install)', typeof c.deliverQoS === 'function' && c.deliverQoS.name === 'deliverQoSGranted')
  const d = client as unknown as Partial<Record<keyof DeliveryInternals, unknown>>
  expect('client.deliver0 (function)', typeof d.deliver0 === 'function')
  expect('client._onError and client.waitForDrain (functions)', typeof d._onError === 'function' && typeof d.waitForDrain === 'function')
  expect('client.errored and client.connecting (booleans)', typeof d.errored === 'boolean' && typeof d.connecting === 'boolean')
  expect('client.duplicates (object)', typeof d.duplicates === 'object' && d.duplicates !== null)
  // patches/mqtt-packet+9.0.2.patch: the parser's buffer list is not a stream (about 1 KB less per connection).
  const list = (parser as { _list?: { pipe?: unknown } } | undefined)?._list
  expect('client._parser._list without a stream from patches/mqtt-packet+9.0.2.patch (run npm install)', list !== undefined && list.pipe === undefined)
  expect('client.subscriptions (object)', typeof c.subscriptions === 'object' && c.subscriptions !== null)
  const broker = aedes as unknown as { mq?: { emit?: unknown }, clients?: unknown }
  expect('broker.mq.emit (function)', typeof broker.mq?.emit === 'function')
  expect('broker.clients (object)', typeof broker.clients === 'object' && broker.clients !== null)
  const persistence = (aedes as unknown as { persistence?: { createRetainedStream?: unknown, createRetainedStreamCombi?: unknown } }).persistence
  expect('broker.persistence.createRetainedStream (function)', typeof persistence?.createRetainedStream === 'function')
  expect('broker.persistence.createRetainedStreamCombi (function)', typeof persistence?.createRetainedStreamCombi === 'function')
  const ws = (conn as unknown as { _writableState?: { highWaterMark?: unknown } })._writableState
  expect('stream._writableState.highWaterMark (number)', typeof ws?.highWaterMark === 'number')
  client.close()
  conn.destroy()
  return problems
}
