// HTTP load with autocannon: a fixed number of keep-alive connections, one
// request in flight each, for a fixed time.
import autocannon, { type Result } from 'autocannon'
import { LatencyRecorder } from './latency.js'

export interface HttpRequestSpec {
  url: string
  method: string
  headers: Record<string, string>
  body: string
}

export interface HttpLoad {
  rps: number
  p50: number
  p99: number
  requests: number
  non2xx: number
  errors: number
  timeouts: number
  /** Counts per status code, to say what the non-2xx responses were. */
  statuses: Record<string, number>
}

/** latencies: a recorder shared by loads that run side by side (runSplitHttpLoad), so their percentiles are those of all. */
export async function runHttpLoad (spec: HttpRequestSpec, connections: number, durationS: number, latencies = new LatencyRecorder()): Promise<HttpLoad> {
  const result = await new Promise<Result>((resolve, reject) => {
    const instance = autocannon({
      url: spec.url,
      method: spec.method,
      headers: spec.headers,
      body: spec.body,
      connections,
      pipelining: 1,
      duration: durationS,
      timeout: 10
    }, (err, res) => { if (err) reject(err); else resolve(res) })
    instance.on('response', (_client, statusCode, _bytes, ms) => {
      if (statusCode >= 200 && statusCode < 300) latencies.record(ms)
    })
  })
  const [p50, p99] = latencies.percentiles([50, 99]) as [number, number]
  const statuses: Record<string, number> = {}
  for (const [code, s] of Object.entries(result.statusCodeStats)) statuses[code] = s.count
  return {
    rps: result.requests.total / result.duration,
    p50,
    p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses
  }
}

/** The connections split evenly over several targets at once (several gateway nodes): throughput and counts added up. */
export async function runSplitHttpLoad (specs: HttpRequestSpec[], connections: number, durationS: number): Promise<HttpLoad> {
  if (specs.length === 1) return await runHttpLoad(specs[0] as HttpRequestSpec, connections, durationS)
  const latencies = new LatencyRecorder()
  const parts = await Promise.all(specs.map(async (spec, i) =>
    await runHttpLoad(spec, Math.max(1, Math.round(connections * (i + 1) / specs.length) - Math.round(connections * i / specs.length)), durationS, latencies)))
  const [p50, p99] = latencies.percentiles([50, 99]) as [number, number]
  const sum = (k: 'rps' | 'requests' | 'non2xx' | 'errors' | 'timeouts'): number => parts.reduce((n, p) => n + p[k], 0)
  const statuses: Record<string, number> = {}
  for (const p of parts) for (const [code, n] of Object.entries(p.statuses)) statuses[code] = (statuses[code] ?? 0) + n
  return { rps: sum('rps'), p50, p99, requests: sum('requests'), non2xx: sum('non2xx'), errors: sum('errors'), timeouts: sum('timeouts'), statuses }
}
