// MQTT over WebSocket on the HTTP port [P-1.8]: upgrades on config.wsPath are
// handed to the embedded broker, every other upgrade is refused. A browser
// Origin outside allowedOrigins gets 403 before the handshake; an address over
// connectRate waits for its turn, and gets 429 only past the limit's hard bound.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { answerHandshake, serveWebSocket } from '../../broker/ws-stream.js'
import { originAllowed } from '../../core/origins.js'
import { configFiles } from '../config-files.js'
import { errorBody, ERRORS, type ErrorCode } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'

// MQTT-over-WebSocket subprotocol names, newest first [MQTT-6.0.0-3].
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1']

/** An HTTP error answer written straight to the upgrading socket, which is then closed. */
function refuseUpgrade (socket: Duplex, code: ErrorCode, message?: string): void {
  const status = ERRORS[code].status
  const body = JSON.stringify(errorBody(code, message))
  const reason = STATUS_CODES[status] ?? 'Error'
  const retry = status === 429 ? 'Retry-After: 1\r\n' : ''
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n${retry}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

async function websocketPlugin (app: FastifyInstance): Promise<void> {
  // Room for a body at the limit after base64 and the envelope around it.
  // At least maxPacketSize, so a packet the broker accepts fits in one message.
  // No extension is ever accepted: browsers always offer permessage-deflate, and
  // it costs 6x memory per connection and a third of the throughput (docs/ARCHITECTURE.md "Pitfalls" 3).
  const maxPayload = Math.max(Math.ceil(app.config.bodyLimit * 4 / 3) + 65_536, app.config.maxPacketSize)
  const sockets = new Set<Socket>()
  function forget (this: Socket): void { sockets.delete(this) }

  const origins = configFiles(app.config).origins
  const limited = new LogLimiter(app.log)
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== app.config.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const origin = req.headers.origin
    // The client's address, through trustedProxies like req.ip on REST.
    const address = app.limits.addressOf(req)
    // [P-11.10] DNS rebinding: a page whose name now points at loopback still sends its own Host.
    if (!app.hostAllowed(req.headers.host)) {
      limited.warn('ws-host', `WebSocket from ${address ?? '?'}: Host ${JSON.stringify(req.headers.host?.slice(0, 200))} is not a loopback name or in allowedHosts; 421`)
      refuseUpgrade(socket, 'RTW_HOST_NOT_ALLOWED')
      return
    }
    if (!originAllowed(origins, origin, req.headers.host)) {
      limited.warn('ws-origin', `WebSocket from ${address ?? '?'}: origin ${JSON.stringify(origin?.slice(0, 200))} is not allowed; 403`)
      refuseUpgrade(socket, 'RTW_ORIGIN_NOT_ALLOWED')
      return
    }
    const wait = app.limits.admitConnection(address)
    if (wait < 0) {
      refuseUpgrade(socket, 'RTW_TOO_MANY_REQUESTS', 'Too many new connections from this address')
      return
    }
    // Over connectRate, the upgrade is answered once its turn comes (README "Limits").
    if (wait === 0) accept(req, socket, head)
    else {
      socket.on('error', () => {})
      sockets.add(socket as Socket)
      setTimeout(() => {
        sockets.delete(socket as Socket)
        if (!socket.destroyed) accept(req, socket, head)
      }, wait).unref()
    }
  }
  const accept = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const answer = answerHandshake(req, SUBPROTOCOLS)
    if (!answer.ok) {
      const body = answer.message
      socket.end(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n${answer.headers ?? ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      return
    }
    if (!socket.readable || !socket.writable) {
      socket.destroy()
      return
    }
    socket.write(answer.response)
    const conn = serveWebSocket(socket as Socket, head, maxPayload)
    sockets.add(conn)
    conn.once('close', forget)
    app.broker.handle(conn, req)
  }
  app.server.on('upgrade', onUpgrade)

  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade)
    // Here, not in onClose: Fastify's server.close() runs before the plugins'
    // onClose hooks and waits for every socket, upgraded ones included.
    for (const s of sockets) s.destroy()
  })
  app.addHook('onClose', async () => {
    for (const s of sockets) s.destroy()
  })
}

export default fp(websocketPlugin, { name: 'rtw-websocket', dependencies: ['rtw-broker', 'rtw-limits', 'rtw-host-check'] })
