// Runs the broker rows (bench/broker-rows.ts) against the gateway and
// mosquitto in interleaved rounds, and prints each row's median figures, the
// ratio (the median of each round's ratio), the goal, and the CPU every
// process used while the row was measured.
//   BENCH_BROKER_ROWS  comma list of row ids (default: every row not opted in)
//   BENCH_HOLD         "1" adds the 50,000-connection hold (raises the fd limit)
import { execFileSync } from 'node:child_process'
import { BROKER_ROWS, PAYLOAD_BYTES, type BrokerRow, type BrokerTarget } from '../broker-rows.js'
import type { LoadResult, Meter } from './broker-load.js'
import { startCpuMeter, type CpuShares } from './cpu.js'
import { startGatewayWithEcho } from './gateway.js'
import { mosquittoMissing, mosquittoVersion, startMosquitto } from './mosquitto.js'
import { pin, pinning } from './pin.js'
import { fmtRatio, renderTable } from './table.js'

interface Running { target: BrokerTarget, stop: () => Promise<void> }
interface Sample { result: LoadResult, cpu: CpuShares, spanS: number }
type Side = 'gateway' | 'mosquitto'

function endpoints (tcpUrl: string, wsUrl: string): Pick<BrokerTarget, 'tcp' | 'ws'> {
  const t = new URL(tcpUrl)
  const w = new URL(wsUrl)
  return {
    tcp: { transport: 'tcp', host: t.hostname, port: Number(t.port) },
    ws: { transport: 'ws', host: w.hostname, port: Number(w.port), path: w.pathname }
  }
}

async function startSide (side: Side, row: BrokerRow): Promise<Running> {
  if (side === 'mosquitto') {
    const m = await startMosquitto()
    return { target: { name: side, pid: m.pid, ...endpoints(`mqtt://${m.host}:${m.port}`, m.wsUrl) }, stop: m.stop }
  }
  const gw = await startGatewayWithEcho(`broker-${row.id}`, { gatewayEnv: row.lifted?.env })
  return { target: { name: side, pid: gw.gateway.proc.pid as number, ...endpoints(gw.mqttUrl, gw.wsUrl) }, stop: gw.stop }
}

/** Raises this process's open-file limit, for itself and the children it starts from now on; returns the limit it got. */
function raiseFdLimit (wanted: number): string {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: 'pipe' })
  } catch {
    // Not root: the soft limit can still go up to the hard one.
    try { execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}`], { stdio: 'pipe' }) } catch { /* left as it is */ }
  }
  try {
    return execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=SOFT', '--noheadings'], { encoding: 'utf8' }).trim()
  } catch {
    return '?'
  }
}

async function measure (row: BrokerRow, target: BrokerTarget): Promise<Sample> {
  if (pinning) {
    pin(target.pid, 0)
    pin(process.pid, 1)
  }
  let stopMeter: (() => CpuShares) | undefined
  let cpu: CpuShares = { shares: [] }
  let t0 = 0n
  let spanS = NaN
  const meter: Meter = {
    start: () => {
      t0 = process.hrtime.bigint()
      stopMeter = startCpuMeter([{ name: target.name, pid: target.pid }])
    },
    stop: () => {
      if (stopMeter === undefined) return
      cpu = stopMeter()
      spanS = Number(process.hrtime.bigint() - t0) / 1e9
    }
  }
  const result = await row.run(target, meter)
  return { result, cpu, spanS }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number
const share = (s: Sample, name: string): number => s.cpu.shares.find(([n]) => n === name)?.[1] ?? NaN

function fmt (n: number): string {
  if (!Number.isFinite(n)) return '-'
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
}

/** Runs the rows; true when some figure is not clean (a problem in some round). */
export async function benchBrokers (rounds: number): Promise<boolean> {
  const missing = mosquittoMissing()
  if (missing !== undefined) {
    console.log(`\nBroker rows skipped: ${missing}`)
    return false
  }
  const ids = process.env.BENCH_BROKER_ROWS?.split(',').map(s => s.trim())
  const rows = BROKER_ROWS.filter(r => ids !== undefined ? ids.includes(r.id) : r.optIn === undefined || process.env[r.optIn] === '1')
  const unknown = ids?.filter(id => !BROKER_ROWS.some(r => r.id === id)) ?? []
  if (unknown.length > 0) throw new Error(`unknown broker rows ${unknown.join(', ')}; known: ${BROKER_ROWS.map(r => r.id).join(', ')}`)
  if (rows.length === 0) return false
  let fdNote = ''
  if (rows.some(r => r.optIn === 'BENCH_HOLD')) fdNote = `; open-file limit raised to ${raiseFdLimit(1_048_576)}`

  // Rows that are not fresh share one broker process per side and per set of lifted guards.
  const shared = new Map<string, Running>()
  const sharedFor = async (side: Side, row: BrokerRow): Promise<Running> => {
    const key = `${side} ${JSON.stringify(row.lifted?.env ?? {})}`
    let r = shared.get(key)
    if (r === undefined) {
      r = await startSide(side, row)
      shared.set(key, r)
    }
    return r
  }
  const samples = new Map<BrokerRow, Record<Side, Sample[]>>(rows.map(r => [r, { gateway: [], mosquitto: [] }]))
  for (let round = 1; round <= rounds; round++) {
    for (const row of rows) {
      // Alternate which side goes first, so drift over a round hits both alike.
      const order: Side[] = round % 2 === 1 ? ['gateway', 'mosquitto'] : ['mosquitto', 'gateway']
      for (const side of order) {
        process.stderr.write(`  round ${round}/${rounds}: ${row.name}, ${side}…\n`)
        if (row.fresh === true) {
          const r = await startSide(side, row)
          try {
            samples.get(row)?.[side].push(await measure(row, r.target))
          } finally {
            await r.stop()
          }
        } else {
          const r = await sharedFor(side, row)
          samples.get(row)?.[side].push(await measure(row, r.target))
        }
      }
    }
  }
  for (const r of shared.values()) await r.stop()

  let failed = false
  const notes: string[] = []
  const table = rows.map(row => {
    const s = samples.get(row) as Record<Side, Sample[]>
    const value = (side: Side): number => median(s[side].map(x => x.result.value))
    const ratios = s.gateway.map((g, i) => g.result.value / (s.mosquitto[i] as Sample).result.value)
    const ratio = median(ratios)
    const gw = value('gateway')
    const goal = row.goal?.minRatio !== undefined ? `≥ ${row.goal.minRatio}×` : row.goal?.max !== undefined ? `≤ ${row.goal.max} ${row.unit}` : ''
    const incomplete = [...s.gateway, ...s.mosquitto].map(x => x.result.incomplete).find(x => x !== undefined)
    if (incomplete !== undefined) notes.push(`  ${row.name}: ${incomplete}; the goal is not judged`)
    const met = incomplete !== undefined ? undefined : row.goal?.minRatio !== undefined ? ratio >= row.goal.minRatio : row.goal?.max !== undefined ? gw <= row.goal.max : undefined
    const perOp = (side: Side): string => fmt(median(s[side].map(x => share(x, side) * x.spanS * 1e6 / x.result.ops)))
    const load = (side: Side): string => median(s[side].map(x => share(x, 'load'))).toFixed(2)
    const other = median([...s.gateway, ...s.mosquitto].map(x => share(x, 'other'))).toFixed(2)
    for (const side of ['gateway', 'mosquitto'] as const) {
      for (const [i, x] of s[side].entries()) {
        if (x.result.problems.length > 0) {
          failed = true
          notes.push(`  ! ${row.name}, ${side}, round ${i + 1}: ${x.result.problems.join('; ')}`)
        }
      }
      const note = s[side].map(x => x.result.note).filter(n => n !== undefined)
      if (note.length > 0) notes.push(`  ${row.name}, ${side}: ${note.join(' | ')}`)
    }
    return [
      row.name, fmt(gw), fmt(value('mosquitto')), row.unit,
      fmtRatio(ratio) + (rounds > 1 ? ` (${ratios.map(fmtRatio).join(' ')})` : ''),
      goal, met === undefined ? '' : met ? 'met' : 'NOT met',
      perOp('gateway'), perOp('mosquitto'), `${load('gateway')} / ${load('mosquitto')}`, other
    ]
  })
  console.log(`\nBrokers side by side: the gateway (defaults, but for the guards named below) and ${mosquittoVersion()} (its defaults; ` +
    `a TCP and a WebSocket listener, no persistence), each on its own free ports; ${PAYLOAD_BYTES}-byte payloads; ` +
    `median of ${rounds} interleaved round${rounds > 1 ? 's' : ''}${fdNote}\n`)
  console.log(renderTable(['row', 'gateway', 'mosquitto', 'unit', 'gw/mosq (rounds)', 'goal', '', 'gw CPU µs/op', 'mosq CPU µs/op', 'load cores gw / mosq', 'other'], table))
  console.log('\n  CPU µs/op: CPU time the broker process spent per operation (delivery, or connect), while the row was measured')
  console.log('  load cores: the load generator (this process, a raw MQTT client: bench/lib/load-client.ts) while measuring each; other: the rest of the machine')
  console.log('  idle memory: RSS growth over the connections, CONNACKed and idle, after RSS settles, with 200 connections opened first; a new broker process per round')
  const lifted = new Map<string, string[]>()
  for (const row of rows) if (row.lifted !== undefined) lifted.set(row.lifted.why, [...(lifted.get(row.lifted.why) ?? []), row.id])
  for (const [why, which] of lifted) console.log(`  lifted for ${which.join(', ')}: ${why}`)
  for (const n of notes) console.log(n)
  return failed
}

