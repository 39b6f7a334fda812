// What per-request metrics counting costs (issue 14): the gateway row against
// gateway-nometrics (the same build with Metrics.settled a no-op), as gateway
// process CPU per request in each interleaved round, and, repeatable whatever
// the machine's load, the CPU of Metrics.settled itself in this process.
import type { CpuShares } from './lib/cpu.js'
import { Metrics } from '../gateway/metrics/registry.js'
import type { RequestObserver } from '../core/bridge.js'
import { fmtRatio } from './lib/table.js'

interface RoundSample { load: { rps: number }, cpu: CpuShares }
interface HttpRowLike { scenario: { name: string }, connections: number, samples: RoundSample[] }

const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number
const fmtUs = (us: number): string => Number.isFinite(us) ? us.toFixed(1) : '?'

/** Gateway process CPU (not the echo server's) per request, in µs. */
function gatewayCpuUs (s: RoundSample): number {
  const share = s.cpu.shares.find(([name]) => name === 'gateway')?.[1]
  return share === undefined ? NaN : share * 1e6 / s.load.rps
}

/** One line per connection count where both rows ran: median µs per request of each, and the median per-round difference. */
export function reportMetricsCost (rows: HttpRowLike[]): void {
  const lines: string[] = []
  for (const on of rows.filter(r => r.scenario.name === 'gateway')) {
    const off = rows.find(r => r.scenario.name === 'gateway-nometrics' && r.connections === on.connections)
    if (off === undefined) continue
    const a = on.samples.map(gatewayCpuUs)
    const b = off.samples.map(gatewayCpuUs)
    const diff = a.map((x, i) => x - (b[i] as number))
    lines.push(`  at ${on.connections} connections: gateway ${fmtUs(mid(a))} µs/req with counting, ${fmtUs(mid(b))} without; ` +
      `difference ${fmtUs(mid(diff))} µs (per round: ${diff.map(fmtUs).join(', ')})`)
  }
  if (lines.length === 0) return
  console.log('\nMetrics cost on the REST path: gateway process CPU per request, gateway against gateway-nometrics, interleaved rounds')
  for (const l of lines) console.log(l)
  const micro = measureSettled()
  console.log(`  Metrics.settled in this process (repeatable): ${micro.counting.toFixed(0)} ns per request against ${micro.reference.toFixed(0)} ns ` +
    `for an observer that only sums its arguments (${fmtRatio(micro.counting / micro.reference)}); difference ${(micro.counting - micro.reference).toFixed(0)} ns, ` +
    `${micro.services} services, median of ${micro.rounds} interleaved rounds of ${micro.calls.toLocaleString('en')} calls`)
}

/** CPU ns per settled() call: Metrics (20 services, 4 statuses, both transports) against a trivial observer, interleaved. */
export function measureSettled (calls = 1_000_000, rounds = 5): { counting: number, reference: number, services: number, calls: number, rounds: number } {
  const services = Array.from({ length: 20 }, (_, i) => `svc${i}`)
  const statuses = [200, 200, 200, 404, 200, 504, 200, 429]
  let sink = 0
  const reference: RequestObserver = { settled (service, transport, status, startedAt) { sink += service.length + status + (transport === 'rest' ? 0 : 1) + (startedAt > 0 ? 1 : 0) } }
  const counting = new Metrics({ maxServices: 100, processMetrics: false })
  const run = (o: RequestObserver): number => {
    const t0 = process.cpuUsage()
    for (let i = 0; i < calls; i++) o.settled(services[i % 20] as string, (i & 1) === 0 ? 'rest' : 'mqtt', statuses[i & 7] as number, performance.now())
    const d = process.cpuUsage(t0)
    return (d.user + d.system) * 1000 / calls
  }
  run(reference); run(counting)
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < rounds; r++) { a.push(run(counting)); b.push(run(reference)) }
  if (sink < 0) console.log(sink)
  return { counting: mid(a), reference: mid(b), services: services.length, calls, rounds }
}
