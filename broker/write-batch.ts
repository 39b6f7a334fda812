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

type WriteCallback = (err?: Error | null) => void

export function batchWrites (stream: Writable): void {
  let chunks: Uint8Array[] = []
  let callbacks: WriteCallback[] = []
  let bytes = 0
  let scheduled = false
  // A false returned because of gathered bytes alone owes the writer a 'drain'.
  let owedDrain = false
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean
  const end = stream.end.bind(stream) as (...args: unknown[]) => Writable

  const flush = (): void => {
    scheduled = false
    if (chunks.length === 0) return
    const data = chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks, bytes)
    const waiting = callbacks
    chunks = []
    callbacks = []
    bytes = 0
    // A destroyed stream reports the failure to the callbacks, as an unbatched write would.
    const ok = write(data, undefined, waiting.length === 0 ? undefined : err => { for (const cb of waiting) cb(err) })
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
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk as Uint8Array
    chunks.push(buf)
    bytes += buf.length
    if (cb !== undefined) callbacks.push(cb)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
    // Backpressure as the stream would report it with these bytes queued.
    const ok = stream.writableLength + bytes < stream.writableHighWaterMark
    if (!ok) owedDrain = true
    return ok
  } as Writable['write']

  // Whatever is gathered goes out before the end.
  stream.end = function (...args: unknown[]): Writable {
    flush()
    return end(...args)
  } as Writable['end']
}
