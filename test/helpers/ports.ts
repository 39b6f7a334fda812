// A free TCP port for child processes that must be told their port up front.
import { connect, createServer } from 'node:net'

/** Listens on port 0, reads the port the kernel chose, and closes. */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const addr = server.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** True when something accepts TCP connections on the port. */
export async function isListening (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect({ port, host })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** A first port of `count` consecutive free ones, for a base-plus-index setting such as metricsPort. */
export async function freePortRun (count: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort(host)
    if (base + count - 1 > 65535) continue
    let free = true
    for (let i = 1; i < count && free; i++) free = await canListen(base + i, host)
    if (free) return base
  }
  throw new Error(`no run of ${count} free ports found`)
}

async function canListen (port: number, host: string): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}
