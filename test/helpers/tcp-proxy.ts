// A TCP proxy on a free port in front of one server, for network splits: cut()
// resets every connection through it and refuses new ones, heal() lets them
// through again, on the same port.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { freePort } from './ports.js'

export interface TcpProxy {
  port: number
  cut: () => Promise<void>
  heal: () => Promise<void>
  close: () => Promise<void>
}

export async function tcpProxy (targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const listen = async (): Promise<void> => {
    const s = createServer(client => {
      const upstream = connect({ port: targetPort, host: targetHost })
      for (const sock of [client, upstream]) {
        sockets.add(sock)
        sock.on('close', () => sockets.delete(sock))
        sock.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    server = s
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', () => resolve()) })
  }
  const stop = async (): Promise<void> => {
    const s = server
    server = undefined
    for (const sock of sockets) sock.resetAndDestroy()
    if (s !== undefined) await new Promise<void>(resolve => s.close(() => resolve()))
  }
  await listen()
  return { port, cut: stop, heal: listen, close: stop }
}
