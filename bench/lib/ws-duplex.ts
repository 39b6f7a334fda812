// A Duplex over a `ws` WebSocket, for MQTT.js in the bench's ws-batched rows.
// Unlike ws.createWebSocketStream it gathers every chunk written in one tick
// into a single binary frame, as MQTT.js's browser transport does: mqtt-packet
// writes one PUBLISH as several small chunks (docs/ARCHITECTURE.md "Pitfalls" 1).
import { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { Gather } from '../../net/write-batch.js'

// Past this many unsent bytes, writes wait for the socket.
const HIGH_WATER = 1 << 20

export function webSocketDuplex (ws: WebSocket, highWater = HIGH_WATER): Duplex {
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
  return duplex
}
