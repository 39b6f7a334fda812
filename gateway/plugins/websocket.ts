// MQTT over WebSocket on the HTTP port [P-1.8]: upgrades on config.wsPath are
// handed to the embedded broker, every other upgrade is refused.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import { webSocketDuplex } from '../../broker/ws-stream.js'

// MQTT-over-WebSocket subprotocol names, newest first [MQTT-6.0.0-3].
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1']

async function websocketPlugin (app: FastifyInstance): Promise<void> {
  const wss = new WebSocketServer({
    noServer: true,
    // Browsers always offer permessage-deflate; accepting it costs 6x memory per
    // connection and a third of the throughput (PERF-NOTES pitfall 3).
    perMessageDeflate: false,
    // Room for a body at the limit after base64 and the envelope around it.
    maxPayload: Math.ceil(app.config.bodyLimit * 4 / 3) + 65_536,
    handleProtocols: (offered: Set<string>) => SUBPROTOCOLS.find(p => offered.has(p)) ?? false
  })

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== app.config.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, ws => {
      app.broker.handle(webSocketDuplex(ws), req)
    })
  }
  app.server.on('upgrade', onUpgrade)

  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade)
    // Here, not in onClose: Fastify's server.close() runs before the plugins'
    // onClose hooks and waits for every socket, upgraded ones included.
    for (const ws of wss.clients) ws.terminate()
  })
  app.addHook('onClose', async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>(resolve => wss.close(() => resolve()))
  })
}

export default fp(websocketPlugin, { name: 'rtw-websocket', dependencies: ['rtw-broker'] })
