// Gathers every write to a stream during one turn of the event loop into one
// socket write. mqtt-packet writes a PUBLISH as about five small chunks and
// corks the stream only until the next tick, so each packet, and each HTTP
// request's publish to a responder, cost its own write syscall; on loopback
// that syscall is most of a message's cost. Here the chunks wait in an array
// until setImmediate, after the whole poll phase, and go out as one buffer.
// Gathering them here rather than with cork() also skips the stream's
// per-chunk bookkeeping (a buffered-write record and a callback per chunk),
// which cost more than the copy into one buffer.
//
// The write and end that replace the stream's own are shared by every stream,
// with each stream's state in one object under a symbol: an idle connection
// then costs that object and no closures (thousands of idle connections are
// what a fleet mostly is).
import type { Writable } from 'node:stream'

export type WriteCallback = (err?: Error | null) => void

/** Chunks, and callbacks waiting for them, gathered until taken out as one buffer. */
export class Gather {
  private chunks: Uint8Array[] = []
  private callbacks: WriteCallback[] | null = null
  bytes = 0

  /** Adds a chunk; true when it is the first since the last take, so a flush is due. */
  add (chunk: Uint8Array): boolean {
    this.chunks.push(chunk)
    this.bytes += chunk.length
    return this.chunks.length === 1
  }

  /** A callback to call once what is gathered now has been written. */
  wait (cb: WriteCallback): void {
    (this.callbacks ??= []).push(cb)
  }

  /** Everything gathered as one buffer, and what to call once it is written; undefined when there is nothing. */
  take (): { data: Uint8Array, done: WriteCallback | undefined } | undefined {
    if (this.chunks.length === 0) return undefined
    const data = this.chunks.length === 1 ? this.chunks[0] as Uint8Array : Buffer.concat(this.chunks, this.bytes)
    const waiting = this.callbacks
    this.chunks = []
    this.callbacks = null
    this.bytes = 0
    return { data, done: waiting === null ? undefined : err => { for (const cb of waiting) cb(err) } }
  }
}

type RawWrite = (this: Writable, chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean
type RawEnd = (this: Writable, cb?: () => void) => Writable

export interface Framing {
  /** Bytes that go in front of each batch of `length` bytes, e.g. a WebSocket frame header. */
  header: (length: number) => Uint8Array
  /** Bytes written last, before end() (e.g. a WebSocket Close frame). */
  closing?: Uint8Array
}

class Batch extends Gather {
  /** A false returned because of gathered bytes alone owes the writer a 'drain'. */
  owedDrain = false
  constructor (readonly write: RawWrite, readonly end: RawEnd, readonly framing: Framing | undefined) {
    super()
  }
}

const BATCH = Symbol('rtw.batch')
type Batched = Writable & { [BATCH]?: Batch }

function emitDrain (stream: Writable): void {
  stream.emit('drain')
}

function flushBatch (stream: Batched): void {
  const b = stream[BATCH]
  const taken = b?.take()
  if (b === undefined || taken === undefined) return
  // A destroyed stream reports the failure to the callbacks, as an unbatched write would.
  let ok: boolean
  if (b.framing === undefined) {
    ok = b.write.call(stream, taken.data, undefined, taken.done)
  } else {
    // Header and batch in one writev, without copying the batch.
    stream.cork()
    b.write.call(stream, b.framing.header(taken.data.length))
    ok = b.write.call(stream, taken.data, undefined, taken.done)
    stream.uncork()
  }
  // When the stream said false it emits 'drain' itself; otherwise it never will, so do it here.
  if (b.owedDrain && ok) process.nextTick(emitDrain, stream)
  b.owedDrain = false
}

function batchedWrite (this: Batched, chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
  const b = this[BATCH] as Batch
  if (typeof encoding === 'function') {
    cb = encoding
    encoding = undefined
  }
  // After end() or destroy() the stream itself raises the error.
  if (this.destroyed || this.writableEnded) return b.write.call(this, chunk, encoding, cb)
  if (b.add(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk as Uint8Array)) setImmediate(flushBatch, this)
  if (cb !== undefined) b.wait(cb)
  // Backpressure as the stream would report it with these bytes queued.
  const ok = this.writableLength + b.bytes < this.writableHighWaterMark
  if (!ok) b.owedDrain = true
  return ok
}

/** Whatever is gathered, and a last chunk given to end(), go out before the end. */
function batchedEnd (this: Batched, chunk?: unknown, encoding?: BufferEncoding | (() => void), cb?: () => void): Writable {
  const b = this[BATCH] as Batch
  if (typeof chunk === 'function') {
    cb = chunk as () => void
    chunk = undefined
  } else if (typeof encoding === 'function') {
    cb = encoding
    encoding = undefined
  }
  if (chunk !== undefined && chunk !== null && !this.destroyed && !this.writableEnded) batchedWrite.call(this, chunk, encoding)
  flushBatch(this)
  const closing = b.framing?.closing
  if (closing !== undefined && !this.destroyed && !this.writableEnded) b.write.call(this, closing)
  return b.end.call(this, cb)
}

/** Bytes written to `stream` and not yet sent: its own buffer and what its batch has gathered this turn. */
export function unsentBytes (stream: Writable): number {
  return stream.writableLength + ((stream as Batched)[BATCH]?.bytes ?? 0)
}

/** Sends what a batched stream has gathered now, rather than at its next turn; a no-op for other streams. */
export function flushNow (stream: Writable): void {
  flushBatch(stream)
}

/** From now on, everything written to `stream` in one turn goes out as one write (framed by `framing` when given). */
export function batchWrites (stream: Writable, framing?: Framing): void {
  const s = stream as Batched
  s[BATCH] = new Batch(stream.write as RawWrite, stream.end as RawEnd, framing)
  stream.write = batchedWrite as Writable['write']
  stream.end = batchedEnd as Writable['end']
}
