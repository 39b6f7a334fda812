// Gathers every write to a stream during one turn of the event loop into one
// socket write. mqtt-packet corks a stream only until the next tick, so each
// packet, and each HTTP request's publish to a responder, cost its own write
// syscall; on loopback that syscall is most of a message's cost. Here the
// stream stays corked until setImmediate, after the whole poll phase.
import type { Writable } from 'node:stream'

export function batchWrites (stream: Writable): void {
  let corked = false
  const uncork = (): void => {
    corked = false
    stream.uncork()
  }
  const write = stream.write
  stream.write = function (this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!corked && !stream.destroyed) {
      corked = true
      stream.cork()
      setImmediate(uncork)
    }
    return (write as (...a: Parameters<Writable['write']>) => boolean).apply(this, args)
  } as Writable['write']
}
