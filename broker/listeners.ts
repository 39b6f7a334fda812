// Where connections come from: the MQTT TCP (or TLS) listener, and handle()
// for any duplex (the WebSocket plugin passes its upgraded ones here).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Duplex } from 'node:stream'
import { batchWrites } from '../net/write-batch.js'

export interface Listener {
  listen: (port: number, host: string) => Promise<AddressInfo>
  /** Stops accepting and destroys what is still open once `closeClients` is done. */
  close: (closeClients: () => Promise<void>) => Promise<void>
}

export interface ListenerOptions {
  /** PEM certificate and key: the listener then serves mqtts. */
  tls?: { cert: Buffer, key: Buffer }
  /** A new socket, writes already batched. */
  onConnection: (conn: Duplex) => void
  onTlsError: (err: Error) => void
}

export function tcpListener (opts: ListenerOptions): Listener {
  let server: Server | undefined
  const sockets = new Set<Socket>()
  // noDelay: PUBACK and reply are back-to-back small writes; Nagle and delayed ACK would stall them.
  function forget (this: Socket): void { sockets.delete(this) }
  const onSocket = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', forget)
    batchWrites(socket)
    opts.onConnection(socket)
  }
  return {
    listen (port, host) {
      const s = opts.tls === undefined
        ? createServer({ noDelay: true }, onSocket)
        // mqtts: the same broker behind TLS; a handshake must finish within 10 s.
        : createTlsServer({ ...opts.tls, noDelay: true, handshakeTimeout: 10_000 }, onSocket)
      s.on('tlsClientError', opts.onTlsError)
      server = s
      return new Promise((resolve, reject) => {
        s.once('error', reject)
        s.listen(port, host, () => {
          s.off('error', reject)
          resolve(s.address() as AddressInfo)
        })
      })
    },
    async close (closeClients) {
      // server.close() calls back only once every connection has ended, so stop
      // accepting first, close the clients, and only then wait for it.
      const s = server
      const stopped = s === undefined ? Promise.resolve() : new Promise<void>(resolve => s.close(() => resolve()))
      await closeClients()
      for (const socket of sockets) socket.destroy()
      await stopped
    }
  }
}
