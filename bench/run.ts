// `npm run bench`: measures every selected scenario at each concurrency in one
// run, and prints the figures with ratios to each scenario's reference.
//
// Environment:
//   BENCH_DURATION     seconds measured per point (default 5)
//   BENCH_WARMUP       seconds of unmeasured load before each point (default 1)
//   BENCH_CONNECTIONS  comma-separated HTTP connection counts (default 10,50,100)
//   BENCH_SCENARIOS    comma-separated scenario names, or "all" (default bare,gateway)
//   BENCH_MQTT         "0" skips the MQTT TCP/WebSocket round-trip rows
//   BENCH_PROFILE      a scenario name: run its gateway with --cpu-prof into .tmp/bench-profiles/
//   BENCH_VERBOSE      "1" forwards the children's output
import os from 'node:os'
import { cpuSeconds, installCleanup, stopAll, type Child } from './lib/children.js'
import { runHttpLoad, type HttpLoad } from './lib/http-load.js'
import { runMqttLoad, type MqttLoad } from './lib/mqtt-load.js'
import { startGatewayWithEcho } from './lib/gateway.js'
import { fmtInt, fmtMs, fmtRatio, renderTable } from './lib/table.js'
import { BODY, DEFAULT_SCENARIOS, HTTP_SCENARIOS, type HttpScenario, type Started } from './scenarios.js'

const TARGET = { connections: 50, minThroughputRatio: 0.5, maxP99Ratio: 3 }

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${raw})`)
  return n
}

const durationS = envNumber('BENCH_DURATION', 5)
const warmupS = envNumber('BENCH_WARMUP', 1)
const connectionCounts = (process.env.BENCH_CONNECTIONS ?? '10,50,100').split(',').map(Number)
const selected = process.env.BENCH_SCENARIOS ?? DEFAULT_SCENARIOS.join(',')
const names = selected === 'all' ? HTTP_SCENARIOS.map(s => s.name) : selected.split(',').map(s => s.trim())

interface Row { scenario: HttpScenario, connections: number, load: HttpLoad, cpu: string }

/** Measures one point, and the CPU each of the scenario's processes used meanwhile. */
async function measure (started: Started, connections: number): Promise<{ load: HttpLoad, cpu: string }> {
  await runHttpLoad(started.request, connections, warmupS)
  const before = started.processes.map(p => cpuSeconds(p.proc.pid))
  const t0 = process.hrtime.bigint()
  const load = await runHttpLoad(started.request, connections, durationS)
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = started.processes.map((p: Child, i) => {
    const a = before[i]
    const b = cpuSeconds(p.proc.pid)
    const share = a === undefined || b === undefined ? '?' : ((b - a) / wall).toFixed(2)
    return `${p.name.split(':').pop() as string} ${share}`
  }).join(', ')
  return { load, cpu }
}

async function benchHttp (): Promise<{ rows: Row[], failed: boolean }> {
  const scenarios: Array<{ scenario: HttpScenario, started: Started }> = []
  for (const name of names) {
    const scenario = HTTP_SCENARIOS.find(s => s.name === name)
    if (scenario === undefined) throw new Error(`unknown scenario ${name}; known: ${HTTP_SCENARIOS.map(s => s.name).join(', ')}`)
    const skip = scenario.skip?.()
    if (skip !== undefined) { console.log(`skipping ${name}: ${skip}`); continue }
    scenarios.push({ scenario, started: await scenario.start() })
  }
  const rows: Row[] = []
  // Interleaved by concurrency, so slow drift on a shared machine hits every scenario alike.
  for (const connections of connectionCounts) {
    for (const { scenario, started } of scenarios) {
      process.stderr.write(`  ${scenario.name} at ${connections} connections…\n`)
      const { load, cpu } = await measure(started, connections)
      rows.push({ scenario, connections, load, cpu })
    }
  }
  for (const { started } of scenarios) await started.stop()

  let failed = false
  const table = rows.map(r => {
    const ref = r.scenario.reference === undefined ? undefined : rows.find(x => x.scenario.name === r.scenario.reference && x.connections === r.connections)
    const bad = r.load.non2xx + r.load.errors + r.load.timeouts
    if (bad > 0) failed = true
    return [
      String(r.connections), r.scenario.name, fmtInt(r.load.rps), fmtMs(r.load.p50), fmtMs(r.load.p99),
      String(r.load.non2xx), String(r.load.errors + r.load.timeouts),
      ref === undefined ? '' : ref.scenario.name,
      ref === undefined ? '' : fmtRatio(r.load.rps / ref.load.rps),
      ref === undefined ? '' : fmtRatio(r.load.p99 / ref.load.p99),
      r.cpu
    ]
  })
  console.log(`\nHTTP POST with a ${Buffer.byteLength(BODY)}-byte JSON body; ${durationS} s per point after ${warmupS} s warm-up; node ${process.version}, ${os.cpus().length} cores\n`)
  console.log(renderTable(['conns', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs', 'req/s ratio', 'p99 ratio', 'CPU (cores)'], table))
  console.log()
  for (const { scenario } of scenarios) console.log(`  ${scenario.name}: ${scenario.about}`)
  for (const r of rows) {
    const extra = Object.entries(r.load.statuses).filter(([code]) => !code.startsWith('2'))
    if (extra.length > 0 || r.load.errors + r.load.timeouts > 0) {
      console.log(`  ! ${r.scenario.name} at ${r.connections}: statuses ${JSON.stringify(r.load.statuses)}, errors ${r.load.errors}, timeouts ${r.load.timeouts}`)
    }
  }
  return { rows, failed }
}

function reportTarget (rows: Row[]): void {
  const gw = rows.find(r => r.scenario.name === 'gateway' && r.connections === TARGET.connections)
  const bare = rows.find(r => r.scenario.name === 'bare' && r.connections === TARGET.connections)
  if (gw === undefined || bare === undefined) return
  const tr = gw.load.rps / bare.load.rps
  const pr = gw.load.p99 / bare.load.p99
  const mark = (ok: boolean): string => ok ? 'met' : 'NOT met'
  console.log(`\nTarget at ${TARGET.connections} connections: throughput ≥ ${TARGET.minThroughputRatio}× bare: ${fmtRatio(tr)} (${mark(tr >= TARGET.minThroughputRatio)}); ` +
    `p99 ≤ ${TARGET.maxP99Ratio}× bare: ${fmtRatio(pr)} (${mark(pr <= TARGET.maxP99Ratio)})`)
}

async function benchMqtt (): Promise<boolean> {
  const requesters = envNumber('BENCH_MQTT_REQUESTERS', 10)
  const gw = await startGatewayWithEcho('mqtt')
  const results: Array<{ transport: string, qos: 0 | 1, load: MqttLoad }> = []
  for (const qos of [0, 1] as const) {
    for (const [transport, url] of [['tcp', gw.mqttUrl], ['ws', gw.wsUrl]] as const) {
      process.stderr.write(`  MQTT ${transport} QoS ${qos}, ${requesters} requesters…\n`)
      await runMqttLoad(url, '$req/echo/bench', BODY, requesters, warmupS, qos)
      results.push({ transport, qos, load: await runMqttLoad(url, '$req/echo/bench', BODY, requesters, durationS, qos) })
    }
  }
  await gw.stop()
  let failed = false
  const table = results.map(r => {
    const tcp = results.find(x => x.transport === 'tcp' && x.qos === r.qos)
    const isRef = r.transport === 'tcp'
    if (r.load.non2xx + r.load.errors + r.load.timeouts > 0) failed = true
    return [
      `${r.transport}`, String(r.qos), fmtInt(r.load.rps), fmtMs(r.load.p50), fmtMs(r.load.p99),
      String(r.load.non2xx), String(r.load.errors + r.load.timeouts),
      isRef || tcp === undefined ? '' : fmtRatio(r.load.rps / tcp.load.rps),
      isRef || tcp === undefined ? '' : fmtRatio(r.load.p99 / tcp.load.p99)
    ]
  })
  console.log(`\nMQTT-native request/response [P-4]: ${requesters} MQTT.js requesters, one request in flight each, on $req/echo/bench via the gateway to the echo server and back to $inbox/…\n`)
  console.log(renderTable(['transport', 'QoS', 'round trips/s', 'p50 ms', 'p99 ms', 'non-200', 'errors', 'ws/tcp', 'p99 ws/tcp'], table))
  return failed
}

async function main (): Promise<void> {
  installCleanup()
  console.log(`RealTime-Web bench: scenarios ${names.join(', ')} at ${connectionCounts.join(', ')} connections`)
  const http = await benchHttp()
  reportTarget(http.rows)
  const mqttFailed = process.env.BENCH_MQTT === '0' ? false : await benchMqtt()
  await stopAll()
  if (http.failed || mqttFailed) {
    console.log('\nSome requests failed (non-2xx, errors or timeouts above): the figures are not clean.')
    process.exitCode = 1
  }
}

await main()
