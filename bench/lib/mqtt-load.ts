// MQTT-native request/response round trips [P-4]: each requester publishes a
// request envelope on $req/<service>/… naming its own inbox, waits for the
// reply there, and sends the next one. Run over TCP and over WebSocket, it
// shows what the WebSocket transport costs.
import mqtt, { MqttClient } from 'mqtt'
import { WebSocket } from 'ws'
import { webSocketDuplex } from './ws-duplex.js'
import { LatencyRecorder } from './latency.js'

/**
 * tcp and ws are MQTT.js's own transports. In Node, MQTT.js's ws transport is
 * ws.createWebSocketStream, which sends each chunk mqtt-packet writes (about
 * five per PUBLISH) as its own frame; its browser transport batches them.
 * ws-batched stands for the browser: the gateway's own batching duplex, used
 * on the client side.
 */
export type Transport = 'tcp' | 'ws' | 'ws-batched'

export interface MqttLoad {
  rps: number
  p50: number
  p99: number
  requests: number
  /** Replies that were not 200 (including gateway error replies). */
  non2xx: number
  /** Counts per reply status, and per error code for gateway-made errors. */
  statuses: Record<string, number>
  errors: number
  timeouts: number
}

const REPLY_TIMEOUT_MS = 10_000

async function connect (transport: Transport, url: string, clientId: string): Promise<MqttClient> {
  const opts = { clientId, reconnectPeriod: 0, connectTimeout: 5_000, clean: true }
  let client: MqttClient
  if (transport === 'ws-batched') {
    const ws = new WebSocket(url, 'mqtt')
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    client = new MqttClient(() => webSocketDuplex(ws), { protocolVersion: 4, keepalive: 60, ...opts })
  } else {
    client = mqtt.connect(url, opts)
  }
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  // MQTT.js leaves Nagle on; a PUBACK followed by the next request then waits
  // for a delayed ACK (docs/ARCHITECTURE.md "Pitfalls" 2). The ws library turns it off itself.
  ;(client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
  return client
}

export async function runMqttLoad (transport: Transport, url: string, topic: string, body: string, requesters: number, durationS: number, qos: 0 | 1): Promise<MqttLoad> {
  const latencies = new LatencyRecorder()
  let non2xx = 0
  const statuses: Record<string, number> = {}
  let errors = 0
  let timeouts = 0
  let running = true
  const tag = Math.random().toString(36).slice(2, 8)
  const clients = await Promise.all(Array.from({ length: requesters }, async (_, i) => {
    const client = await connect(transport, url, `bench-${tag}-${i}`)
    await client.subscribeAsync(`$inbox/${client.options.clientId as string}/r`, { qos })
    return client
  }))

  const t0 = process.hrtime.bigint()
  const loops = clients.map(async client => {
    const inbox = `$inbox/${client.options.clientId as string}/r`
    let seq = 0
    while (running) {
      const id = String(seq++)
      const started = process.hrtime.bigint()
      const reply = await new Promise<Buffer | 'timeout' | 'error'>(resolve => {
        const timer = setTimeout(() => { client.off('message', onMessage); resolve('timeout') }, REPLY_TIMEOUT_MS)
        function onMessage (_topic: string, payload: Buffer): void {
          clearTimeout(timer)
          client.off('message', onMessage)
          resolve(payload)
        }
        client.on('message', onMessage)
        const envelope = JSON.stringify({ id, replyTo: inbox, method: 'POST', headers: { 'content-type': 'application/json' }, body })
        client.publish(topic, envelope, { qos }, err => {
          if (err) { clearTimeout(timer); client.off('message', onMessage); resolve('error') }
        })
      })
      if (reply === 'timeout') { timeouts++; continue }
      if (reply === 'error') { errors++; continue }
      const parsed = JSON.parse(reply.toString('utf8')) as { id?: string, status?: number, body?: unknown }
      if (parsed.id !== id) { errors++; continue }
      if (parsed.status === 200) { latencies.record(Number(process.hrtime.bigint() - started) / 1e6); continue }
      non2xx++
      let code = ''
      try { code = ' ' + (JSON.parse(String(parsed.body)) as { error: { code: string } }).error.code } catch { /* not a gateway error */ }
      const key = `${parsed.status ?? '?'}${code}`
      statuses[key] = (statuses[key] ?? 0) + 1
    }
  })

  await new Promise(resolve => setTimeout(resolve, durationS * 1000))
  running = false
  await Promise.all(loops)
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9
  await Promise.all(clients.map(async c => c.endAsync()))
  const [p50, p99] = latencies.percentiles([50, 99]) as [number, number]
  return { rps: latencies.count / elapsedS, p50, p99, requests: latencies.count + non2xx, non2xx, statuses, errors, timeouts }
}
