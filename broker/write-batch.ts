// Gathers every write to a stream during one turn of the event loop into one
// socket write. mqtt-packet writes a PUBLISH as about five small chunks and
// corks the stream only until the next tick, so each packet, and each HTTP
// request's publish to a responder, cost its own write syscall; on loopback
// that syscall is most of a message's cost. Here the chunks wait in an array
// until setImmediate, after the whole poll phase, and go out as one buffer.
// Gathering them here rather than with cork() also skips the stream's
// per-chunk bookkeeping (a buffered-write record and a callback per chunk),
// which cost more than the copy into one buffer.
import type { Writable } from 'node:stream'

export type WriteCallback = (err?: Error | null) => void

/** Chunks, and callbacks waiting for them, gathered until taken out as one buffer (here and in ws-stream.ts). */
export class Gather {
  private chunks: Uint8Array[] = []
  private callbacks: WriteCallback[] = []
  bytes = 0

  /** Adds a chunk; true when it is the first since the last take, so a flush is due. */
  add (chunk: Uint8Array): boolean {
    this.chunks.push(chunk)
    this.bytes += chunk.length
    return this.chunks.length === 1
  }

  /** A callback to call once what is gathered now has been written. */
  wait (cb: WriteCallback): void {
    this.callbacks.push(cb)
  }

  /** Everything gathered as one buffer, and what to call once it is written; undefined when there is nothing. */
  take (): { data: Uint8Array, done: WriteCallback | undefined } | undefined {
    if (this.chunks.length === 0) return undefined
    const data = this.chunks.length === 1 ? this.chunks[0] as Uint8Array : Buffer.concat(this.chunks, this.bytes)
    const waiting = this.callbacks
    this.chunks = []
    this.callbacks = []
    this.bytes = 0
    return { data, done: waiting.length === 0 ? undefined : err => { for (const cb of waiting) cb(err) } }
  }
}

/** Sends what a batched stream has gathered now, rather than at its next turn; a no-op for other streams. */
export function flushNow (stream: Writable): void {
  (stream as Writable & { [FLUSH]?: () => void })[FLUSH]?.()
}

const FLUSH = Symbol('rtw.flush')

export function batchWrites (stream: Writable): void {
  const gather = new Gather()
  // A false returned because of gathered bytes alone owes the writer a 'drain'.
  let owedDrain = false
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean
  const end = stream.end.bind(stream) as (...args: unknown[]) => Writable

  const flush = (): void => {
    const taken = gather.take()
    if (taken === undefined) return
    // A destroyed stream reports the failure to the callbacks, as an unbatched write would.
    const ok = write(taken.data, undefined, taken.done)
    // When the stream said false it emits 'drain' itself; otherwise it never will, so do it here.
    if (owedDrain && ok) process.nextTick(() => stream.emit('drain'))
    owedDrain = false
  }

  stream.write = function (chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding
      encoding = undefined
    }
    // After end() or destroy() the stream itself raises the error.
    if (stream.destroyed || stream.writableEnded) return write(chunk, encoding, cb)
    if (gather.add(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk as Uint8Array)) setImmediate(flush)
    if (cb !== undefined) gather.wait(cb)
    // Backpressure as the stream would report it with these bytes queued.
    const ok = stream.writableLength + gather.bytes < stream.writableHighWaterMark
    if (!ok) owedDrain = true
    return ok
  } as Writable['write']

  Object.assign(stream, { [FLUSH]: flush })

  // Whatever is gathered goes out before the end.
  stream.end = function (...args: unknown[]): Writable {
    flush()
    return end(...args)
  } as Writable['end']
}
