// The GET /events rows of `npm run bench` (issue 13): fan-out of one publisher's
// messages to N SSE streams against the same fan-out to N MQTT-over-WebSocket
// clients, in the same run, interleaved round by round; and the gateway's
// memory per idle SSE stream.
//   BENCH_SSE             "0" skips these rows
//   BENCH_SSE_STREAMS     receivers per side (default 500)
//   BENCH_SSE_MESSAGES    messages per round (default 200)
//   BENCH_SSE_IDLE        idle streams for the memory row (default 2000)
import { request, type IncomingMessage } from 'node:http'
import mqtt, { type MqttClient } from 'mqtt'
import { mqttReceivers, until, type Receivers } from './lib/receivers.js'
import { startGatewayWithEcho } from './lib/gateway.js'
import { startCpuMeter } from './lib/cpu.js'
import { settledRss } from './lib/broker-load.js'
import { fmtInt, fmtRatio, renderTable } from './lib/table.js'

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const STREAMS = num('BENCH_SSE_STREAMS', 500)
const MESSAGES = num('BENCH_SSE_MESSAGES', 200)
const IDLE = num('BENCH_SSE_IDLE', 2000)

function openStream (base: URL, topic: string, onData: (n: number) => void): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, path: `/events?topic=${encodeURIComponent(topic)}`, agent: false }, res => {
      res.setEncoding('utf8')
      // Whole lines only: a chunk may end anywhere, even inside "data: ".
      let partial = ''
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n')
        partial = lines.pop() ?? ''
        let n = 0
        for (const line of lines) if (line.startsWith('data: {"topic"')) n++ // not the rtw-position event
        onData(n)
      })
      resolve(res)
    })
    req.on('error', reject)
    req.end()
  })
}

async function sseReceivers (httpUrl: string, n: number, topic: string): Promise<Receivers> {
  const base = new URL(httpUrl)
  let got = 0
  const streams: IncomingMessage[] = []
  for (let i = 0; i < n; i += 100) {
    streams.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, async () => await openStream(base, topic, k => { got += k }))))
  }
  return { count: () => got, close: () => { for (const s of streams) s.destroy() } }
}

interface FanOut { perSecond: number, cpuUs: number, complete: boolean }

/** One round: MESSAGES publishes, timed until every receiver has every one; gateway CPU per delivery. */
async function fanOut (pub: MqttClient, r: Receivers, topic: string, pid: number): Promise<FanOut> {
  const start = r.count()
  const meter = startCpuMeter([{ name: 'gateway', pid }])
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < MESSAGES; i++) pub.publish(topic, `message ${i} ${'x'.repeat(100)}`, { qos: 0 })
  const complete = await until(() => r.count() - start >= MESSAGES * STREAMS, 60_000)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  const cores = meter().shares.find(([name]) => name === 'gateway')?.[1] ?? 0
  const deliveries = r.count() - start
  return { perSecond: deliveries / s, cpuUs: cores * s * 1e6 / Math.max(1, deliveries), complete }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

export async function benchSse (rounds: number): Promise<boolean> {
  const gw = await startGatewayWithEcho('sse', { gatewayEnv: { RTW_CONNECT_RATE: '100000', RTW_SSE_MAX_STREAMS: String(STREAMS + IDLE + 10) } })
  const pid = gw.gateway.proc.pid as number
  let failed = false
  try {
    const pub = await mqtt.connectAsync(gw.mqttUrl, { reconnectPeriod: 0 })
    const sse = await sseReceivers(gw.httpUrl, STREAMS, 'bench/sse')
    const ws = await mqttReceivers(gw.wsUrl, STREAMS, 'bench/ws', 100)
    const results: Record<'sse' | 'ws', FanOut[]> = { sse: [], ws: [] }
    for (let round = 1; round <= rounds; round++) {
      const order: Array<'sse' | 'ws'> = round % 2 === 1 ? ['sse', 'ws'] : ['ws', 'sse']
      for (const side of order) {
        const r = await fanOut(pub, side === 'sse' ? sse : ws, side === 'sse' ? 'bench/sse' : 'bench/ws', pid)
        if (!r.complete) failed = true
        results[side].push(r)
      }
    }
    sse.close()
    ws.close()
    await pub.endAsync()

    // Memory per idle stream: RSS before and after opening IDLE more, settled.
    const before = await settledRss(pid)
    const idle = await sseReceivers(gw.httpUrl, IDLE, 'bench/idle')
    const after = await settledRss(pid)
    idle.close()

    const rate = { sse: median(results.sse.map(r => r.perSecond)), ws: median(results.ws.map(r => r.perSecond)) }
    const cpu = { sse: median(results.sse.map(r => r.cpuUs)), ws: median(results.ws.map(r => r.cpuUs)) }
    console.log(`\nLive fan-out: ${MESSAGES} messages of 110 bytes to ${STREAMS} receivers each, median of ${rounds} interleaved rounds`)
    console.log(renderTable(['row', 'deliveries/s', 'gateway CPU µs/delivery', 'vs MQTT-over-WebSocket'], [
      ['GET /events (SSE)', fmtInt(rate.sse), cpu.sse.toFixed(2), `${fmtRatio(rate.sse / rate.ws)} throughput, ${fmtRatio(cpu.sse / cpu.ws)} CPU`],
      ['MQTT over WebSocket (reference)', fmtInt(rate.ws), cpu.ws.toFixed(2), '1.00×']
    ]))
    console.log(`Idle GET /events streams: ${((after - before) / IDLE / 1024).toFixed(1)} KiB of gateway RSS each (${IDLE} streams, RSS ${(before / 1048576).toFixed(1)} → ${(after / 1048576).toFixed(1)} MiB)`)
    if (failed) console.log('Some fan-out rounds did not complete within 60 s: the figures are not clean.')
  } finally {
    await gw.stop()
  }
  return failed
}
