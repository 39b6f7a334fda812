// A Duplex over a `ws` WebSocket for Aedes. Unlike ws.createWebSocketStream it
// gathers every chunk written in one tick into a single binary frame:
// mqtt-packet writes one PUBLISH as several small chunks, and a frame per chunk
// cost 2-3.5x on WebSocket throughput (PERF-NOTES pitfall 1).
import { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { Gather } from './write-batch.js'

// Past this many unsent bytes (the gateway passes maxOutboundBytes), writes wait
// for the socket, so Aedes's own backpressure (and its drainTimeout) applies.
const HIGH_WATER = 1 << 20

/** A connection that can say how many bytes it holds that the peer has not taken yet. */
export interface MeteredDuplex extends Duplex {
  unsentBytes: () => number
}

export function webSocketDuplex (ws: WebSocket, highWater = HIGH_WATER): MeteredDuplex {
  const gather = new Gather()

  const flush = (): void => {
    const taken = gather.take()
    if (taken === undefined) return
    if (ws.readyState !== ws.OPEN) {
      taken.done?.(new Error('WebSocket is not open'))
      return
    }
    ws.send(taken.data, { binary: true }, taken.done === undefined ? undefined : err => taken.done?.(err ?? null))
  }

  const duplex = new Duplex({
    read () {
      ws.resume?.()
    },
    write (chunk: Buffer, _enc, cb) {
      if (gather.add(chunk)) process.nextTick(flush)
      if (ws.bufferedAmount + gather.bytes > highWater) gather.wait(cb)
      else cb()
    },
    final (cb) {
      flush()
      ws.close(1000)
      cb()
    },
    destroy (err, cb) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate()
      cb(err)
    }
  })

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    // MQTT over WebSocket must use binary frames [MQTT-6.0.0-1].
    if (!isBinary) {
      duplex.destroy(new Error('text frame on an MQTT WebSocket'))
      return
    }
    if (!duplex.push(data)) ws.pause?.()
  })
  ws.once('close', () => {
    duplex.push(null)
    duplex.destroy()
  })
  ws.on('error', err => duplex.destroy(err))
  return Object.assign(duplex, { unsentBytes: () => ws.bufferedAmount + gather.bytes + duplex.writableLength })
}
