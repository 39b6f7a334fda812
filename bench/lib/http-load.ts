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

export async function runHttpLoad (spec: HttpRequestSpec, connections: number, durationS: number): Promise<HttpLoad> {
  const latencies = new LatencyRecorder()
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
