// `npm run bench`: measures every selected scenario at each concurrency in one
// run, and prints the figures with ratios to each scenario's reference.
//
// Environment:
//   BENCH_DURATION         seconds measured per point (default 5)
//   BENCH_WARMUP           seconds of unmeasured load before each point (default 1)
//   BENCH_ROUNDS           rounds over every point, interleaved; the median round is reported (default 3)
//   BENCH_CONNECTIONS      comma-separated HTTP connection counts (default 10,50,100)
//   BENCH_SCENARIOS        comma-separated scenario names, "all" or "none" (default bare,gateway,gateway-qos1,gateway-queued)
//   BENCH_MQTT             "0" skips the MQTT TCP/WebSocket round-trip rows
//   BENCH_MQTT_REQUESTERS  MQTT requesters for those rows (default 10)
//   BENCH_PROFILE          a scenario name: run its server with --cpu-prof into .tmp/bench-profiles/
//   BENCH_GATEWAY_NODE_FLAGS  node flags for every gateway process, e.g. "--max-semi-space-size=32"
//   BENCH_ALT_DIST         a second build (e.g. .tmp/dist-before) to run as the gateway-alt row
//   RTW_AMQP_URL           the RabbitMQ for the gateway-queued row; unset: a private node is started for
//                          it when rabbitmq-server is installed, else the row is skipped (bench/scenarios.ts)
//   BENCH_AMQP_PREFETCH    the gateway-queued row's worker prefetch (default 100)
//   BENCH_VERBOSE          "1" forwards the children's output
//   BENCH_BROKER           "0" skips the broker rows: the gateway beside mosquitto (bench/broker-rows.ts)
//   BENCH_BROKER_ROWS      comma list of broker row ids (default: all but the opt-in ones)
//   BENCH_HOLD             "1" adds the 50,000 idle WebSocket connections row (BENCH_HOLD_CONNECTIONS)
//   BENCH_IDLE_CONNECTIONS connections of the idle-memory rows (default 5000)
//   BENCH_SSE              "0" skips the GET /events rows: SSE vs MQTT-over-WebSocket fan-out, idle stream memory (bench/sse-rows.ts)
//   BENCH_CLUSTER_FANOUT   "0" skips the fan-out-across-nodes rows (bench/cluster-fanout.ts; BENCH_FANOUT_SUBSCRIBERS, BENCH_FANOUT_MESSAGES)
//   BENCH_PIN              "1": the server under test on CPU 0, the load generator and helpers on CPU 1 (bench/lib/pin.ts)
import os from 'node:os'
import { installCleanup, stopAll } from './lib/children.js'
import { formatShares, startCpuMeter, type CpuShares } from './lib/cpu.js'
import { runSplitHttpLoad, type HttpLoad } from './lib/http-load.js'
import { runMqttLoad, type MqttLoad } from './lib/mqtt-load.js'
import { GATEWAY_OVERRIDES, startGatewayWithEcho } from './lib/gateway.js'
import { fmtInt, fmtMs, fmtRatio, renderTable } from './lib/table.js'
import { BODY, DEFAULT_SCENARIOS, HTTP_SCENARIOS, type HttpScenario, type Started } from './scenarios.js'
import { pin, pinning } from './lib/pin.js'
import { benchBrokers } from './lib/broker-bench.js'
import { benchSse } from './sse-rows.js'
import { benchClusterFanout } from './cluster-fanout.js'
import { reportMetricsCost } from './metrics-cost.js'

const TARGET = { scenario: 'gateway', reference: 'bare', connections: 50 }
// The same row's goals: issue 2's (met since), then issue 15's.
const GOALS = [{ issue: 2, minThroughputRatio: 0.5, maxP99Ratio: 3 }, { issue: 15, minThroughputRatio: 0.7, maxP99Ratio: 1.5 }]

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${raw})`)
  return n
}

const durationS = envNumber('BENCH_DURATION', 5)
const warmupS = envNumber('BENCH_WARMUP', 1)
const rounds = Math.round(envNumber('BENCH_ROUNDS', 3))
const connectionCounts = (process.env.BENCH_CONNECTIONS ?? '10,50,100').split(',').map(Number)
const selected = process.env.BENCH_SCENARIOS ?? DEFAULT_SCENARIOS.join(',')
const names = selected === 'all'
  ? HTTP_SCENARIOS.map(s => s.name)
  : selected === 'none' ? [] : selected.split(',').map(s => s.trim())

interface Sample { load: HttpLoad, cpu: CpuShares }
interface Row { scenario: HttpScenario, connections: number, samples: Sample[], load: HttpLoad, cpu: CpuShares }

/** CPU the servers (not the load generator, not the rest of the machine) spent per request, in µs. */
function serverCpuPerRequest (cpu: CpuShares, rps: number): number {
  let cores = 0
  for (const [name, v] of cpu.shares) {
    if (name === 'load' || name === 'other') continue
    if (v === undefined) return NaN
    cores += v
  }
  return cores * 1e6 / rps
}

/** Measures one point, and the CPU each process used meanwhile. */
async function measure (started: Started, connections: number): Promise<Sample> {
  if (pinning) {
    started.processes.forEach((p, i) => pin(p.proc.pid, i === 0 ? 0 : 1))
    pin(process.pid, 1)
  }
  const targets = started.requests ?? [started.request]
  await runSplitHttpLoad(targets, connections, warmupS)
  const stopMeter = startCpuMeter(started.processes.map(p => ({ name: p.name.split(':').pop() as string, pid: p.proc.pid })))
  const load = await runSplitHttpLoad(targets, connections, durationS)
  return { load, cpu: stopMeter() }
}

/** The median round by throughput, with every round's failures added up. */
function median (samples: Sample[]): Sample {
  const sorted = [...samples].sort((a, b) => a.load.rps - b.load.rps)
  const mid = sorted[Math.floor((sorted.length - 1) / 2)] as Sample
  const sum = (k: 'non2xx' | 'errors' | 'timeouts'): number => samples.reduce((n, s) => n + s.load[k], 0)
  const statuses: Record<string, number> = {}
  for (const s of samples) for (const [code, n] of Object.entries(s.load.statuses)) statuses[code] = (statuses[code] ?? 0) + n
  return { load: { ...mid.load, non2xx: sum('non2xx'), errors: sum('errors'), timeouts: sum('timeouts'), statuses }, cpu: mid.cpu }
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
  for (const connections of connectionCounts) {
    for (const { scenario } of scenarios) rows.push({ scenario, connections, samples: [], load: undefined as unknown as HttpLoad, cpu: { shares: [] } })
  }
  // Interleaved, so slow drift on a shared machine hits every scenario alike.
  for (let round = 1; round <= rounds; round++) {
    for (const row of rows) {
      const started = scenarios.find(s => s.scenario === row.scenario)?.started as Started
      process.stderr.write(`  ${rounds > 1 ? `round ${round}/${rounds}: ` : ''}${row.scenario.name} at ${row.connections} connections…\n`)
      row.samples.push(await measure(started, row.connections))
    }
  }
  for (const { started } of scenarios) await started.stop()
  for (const row of rows) Object.assign(row, median(row.samples))

  let failed = false
  const table = rows.map(r => {
    const ref = r.scenario.reference === undefined ? undefined : rows.find(x => x.scenario.name === r.scenario.reference && x.connections === r.connections)
    if (r.load.non2xx + r.load.errors + r.load.timeouts > 0) failed = true
    return [
      String(r.connections), r.scenario.name, fmtInt(r.load.rps), fmtMs(r.load.p50), fmtMs(r.load.p99),
      String(r.load.non2xx), String(r.load.errors + r.load.timeouts),
      ref === undefined ? '' : ref.scenario.name,
      ref === undefined ? '' : fmtRatio(r.load.rps / ref.load.rps),
      ref === undefined ? '' : fmtRatio(r.load.p99 / ref.load.p99),
      fmtInt(serverCpuPerRequest(r.cpu, r.load.rps)),
      formatShares(r.cpu)
    ]
  })
  console.log(`\nHTTP POST with a ${Buffer.byteLength(BODY)}-byte JSON body, one request in flight per connection; ` +
    `${durationS} s per point after ${warmupS} s warm-up${rounds > 1 ? `, median of ${rounds} rounds` : ''}; node ${process.version}, ${os.cpus().length} cores; ` +
    `${pinning ? 'pinned: server under test on CPU 0, load generator and helpers on CPU 1' : 'not pinned (BENCH_PIN=1 pins)'}\n`)
  console.log(renderTable(['conns', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs', 'req/s ratio', 'p99 ratio', 'CPU µs/req', 'CPU (cores)'], table))
  console.log()
  for (const { scenario } of scenarios) console.log(`  ${scenario.name}: ${scenario.about}`)
  console.log('  CPU µs/req: CPU time the server processes spent per request, steadier than req/s when "other" is busy')
  console.log('  CPU (cores): cores each process used during the point; load = autocannon (this process), other = the rest of the machine')
  printCpuBreakdown(rows)
  for (const r of rows) {
    const extra = Object.entries(r.load.statuses).filter(([code]) => !code.startsWith('2'))
    if (extra.length > 0 || r.load.errors + r.load.timeouts > 0) {
      console.log(`  ! ${r.scenario.name} at ${r.connections}: statuses ${JSON.stringify(r.load.statuses)}, errors ${r.load.errors}, timeouts ${r.load.timeouts}`)
    }
  }
  return { rows, failed }
}

/** Each server process's CPU per request, for rows that ask for it, beside their reference's: where a row's extra cost goes. */
function printCpuBreakdown (rows: Row[]): void {
  const perRequest = (r: Row): string => r.cpu.shares
    .filter(([name]) => name !== 'load' && name !== 'other')
    .map(([name, v]) => `${name} ${v === undefined ? '?' : fmtInt(v * 1e6 / r.load.rps)}`).join(', ')
  const lines: string[] = []
  for (const r of rows) {
    if (r.scenario.perProcessCpu !== true) continue
    const ref = rows.find(x => x.scenario.name === r.scenario.reference && x.connections === r.connections)
    const total = serverCpuPerRequest(r.cpu, r.load.rps)
    const extra = ref === undefined ? '' : `; ${fmtInt(total - serverCpuPerRequest(ref.cpu, ref.load.rps))} µs more than ${ref.scenario.name} (${perRequest(ref)})`
    lines.push(`  ${r.scenario.name} at ${r.connections}: ${perRequest(r)} = ${fmtInt(total)} µs/req${extra}`)
  }
  if (lines.length === 0) return
  console.log('\nWhere the CPU goes, µs per request by process (node-a takes the calls; see bench/cluster.ts):')
  for (const l of lines) console.log(l)
}

const SCALE_OUT = { scenario: 'cluster-scaleout', reference: 'cluster-local' }

/** Issue 12: two gateway processes against one, as measured, at every connection count. */
function reportScaleOut (rows: Row[]): void {
  const lines: string[] = []
  for (const two of rows.filter(r => r.scenario.name === SCALE_OUT.scenario)) {
    const one = rows.find(r => r.scenario.name === SCALE_OUT.reference && r.connections === two.connections)
    if (one === undefined) continue
    const perRound = two.samples.map((s, i) => s.load.rps / (one.samples[i] as Sample).load.rps)
    const mid = [...perRound].sort((a, b) => a - b)[Math.floor((perRound.length - 1) / 2)] as number
    lines.push(`  at ${two.connections} connections: ${fmtInt(two.load.rps)} req/s on two nodes, ${fmtInt(one.load.rps)} on one: ${fmtRatio(mid)}` +
      (perRound.length > 1 ? ` (median of rounds: ${perRound.map(fmtRatio).join(', ')})` : '') +
      `; server CPU ${fmtInt(serverCpuPerRequest(two.cpu, two.load.rps))} vs ${fmtInt(serverCpuPerRequest(one.cpu, one.load.rps))} µs/req`)
  }
  if (lines.length === 0) return
  console.log(`\nScale-out (issue 12): ${SCALE_OUT.scenario} against ${SCALE_OUT.reference}, as measured. It cannot reach 2× on this ${os.cpus().length}-core machine: ` +
    'the load generator, the echo servers and redis-server run on the same cores as the gateways, and every request crosses Redis twice')
  for (const l of lines) console.log(l)
}

function reportTarget (rows: Row[]): void {
  const find = (name: string): Row | undefined => rows.find(r => r.scenario.name === name && r.connections === TARGET.connections)
  const gw = find(TARGET.scenario)
  const bare = find(TARGET.reference)
  if (gw === undefined || bare === undefined) return
  // The ratio of each round, measured minutes apart at most, then their median:
  // the machine's speed drifts more between rounds than within one.
  const perRound = (k: 'rps' | 'p99'): number[] => gw.samples.map((s, i) => s.load[k] / (bare.samples[i] as Sample).load[k])
  const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number
  const tr = mid(perRound('rps'))
  const pr = mid(perRound('p99'))
  const mark = (ok: boolean): string => ok ? 'met' : 'NOT met'
  const roundsNote = gw.samples.length > 1 ? ` (median of rounds: ${perRound('rps').map(fmtRatio).join(', ')})` : ''
  console.log(`\nREST bridge at ${TARGET.connections} connections: throughput ${fmtRatio(tr)} bare${roundsNote}, p99 ${fmtRatio(pr)} bare`)
  for (const g of GOALS) {
    console.log(`  Target (issue ${g.issue}): throughput ≥ ${g.minThroughputRatio}× bare (${mark(tr >= g.minThroughputRatio)}); ` +
      `p99 ≤ ${g.maxP99Ratio}× bare (${mark(pr <= g.maxP99Ratio)})`)
  }
}

async function benchMqtt (): Promise<boolean> {
  const requesters = envNumber('BENCH_MQTT_REQUESTERS', 10)
  const gw = await startGatewayWithEcho('mqtt')
  if (pinning) {
    pin(gw.gateway.proc.pid, 0)
    pin(gw.echo.proc.pid, 1)
    pin(process.pid, 1)
  }
  const results: Array<{ transport: string, qos: 0 | 1, load: MqttLoad, cpu: string }> = []
  for (const qos of [0, 1] as const) {
    for (const [transport, url] of [['tcp', gw.mqttUrl], ['ws', gw.wsUrl], ['ws-batched', gw.wsUrl]] as const) {
      process.stderr.write(`  MQTT ${transport} QoS ${qos}, ${requesters} requesters…\n`)
      await runMqttLoad(transport, url, '$req/echo/bench', BODY, requesters, warmupS, qos)
      const stopMeter = startCpuMeter([{ name: 'gateway', pid: gw.gateway.proc.pid }, { name: 'echo', pid: gw.echo.proc.pid }])
      const load = await runMqttLoad(transport, url, '$req/echo/bench', BODY, requesters, durationS, qos)
      results.push({ transport, qos, load, cpu: formatShares(stopMeter()) })
    }
  }
  await gw.stop()
  let failed = false
  const table = results.map(r => {
    const tcp = results.find(x => x.transport === 'tcp' && x.qos === r.qos)
    const isRef = r.transport === 'tcp'
    if (r.load.non2xx + r.load.errors + r.load.timeouts > 0) failed = true
    return [
      r.transport, String(r.qos), fmtInt(r.load.rps), fmtMs(r.load.p50), fmtMs(r.load.p99),
      String(r.load.non2xx), String(r.load.errors + r.load.timeouts),
      isRef || tcp === undefined ? '' : fmtRatio(r.load.rps / tcp.load.rps),
      isRef || tcp === undefined ? '' : fmtRatio(r.load.p99 / tcp.load.p99),
      r.cpu
    ]
  })
  console.log(`\nMQTT-native request/response [P-4]: ${requesters} MQTT.js requesters in this process, one request in flight each, ` +
    '$req/echo/bench -> gateway -> echo server -> gateway -> $inbox/…\n')
  console.log(renderTable(['transport', 'QoS', 'round trips/s', 'p50 ms', 'p99 ms', 'non-200', 'errors', 'vs tcp', 'p99 vs tcp', 'CPU (cores)'], table))
  console.log('  ws: MQTT.js\'s Node WebSocket transport, one frame per chunk (about five per PUBLISH);' +
    ' ws-batched: one frame per event-loop turn on the client too, as MQTT.js\'s browser transport does')
  for (const r of results) {
    if (r.load.non2xx + r.load.errors + r.load.timeouts > 0) {
      console.log(`  ! MQTT ${r.transport} QoS ${r.qos}: non-200 ${JSON.stringify(r.load.statuses)}, errors ${r.load.errors}, timeouts ${r.load.timeouts}`)
    }
  }
  return failed
}

async function main (): Promise<void> {
  installCleanup()
  const [load1] = os.loadavg()
  console.log(`RealTime-Web bench: ${names.join(', ')} at ${connectionCounts.join(', ')} connections (load average before start: ${(load1 ?? 0).toFixed(2)})`)
  const overrides = Object.entries(GATEWAY_OVERRIDES).map(([k, v]) => `${k}=${v}`).join(' ')
  console.log(`Gateway settings changed from the defaults: ${overrides === '' ? 'none' : overrides}`)
  const http = names.length === 0 ? { rows: [], failed: false } : await benchHttp()
  reportTarget(http.rows)
  reportScaleOut(http.rows)
  reportMetricsCost(http.rows)
  const mqttFailed = process.env.BENCH_MQTT === '0' ? false : await benchMqtt()
  const brokerFailed = process.env.BENCH_BROKER === '0' ? false : await benchBrokers(rounds)
  const sseFailed = process.env.BENCH_SSE === '0' ? false : await benchSse(rounds)
  const fanoutFailed = process.env.BENCH_CLUSTER_FANOUT === '0' ? false : await benchClusterFanout(rounds)
  await stopAll()
  if (http.failed || mqttFailed || brokerFailed || sseFailed || fanoutFailed) {
    console.log('\nSome requests failed (non-2xx, errors or timeouts above): the figures are not clean.')
    process.exitCode = 1
  }
}

await main()
