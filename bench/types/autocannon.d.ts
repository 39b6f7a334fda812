// The slice of autocannon 8's API the bench uses (it ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface Options {
    url: string
    method?: string
    headers?: Record<string, string>
    body?: string | Buffer
    connections?: number
    pipelining?: number
    duration?: number
    timeout?: number
  }

  interface Result {
    requests: { average: number, total: number }
    latency: { p50: number, p99: number }
    non2xx: number
    errors: number
    timeouts: number
    duration: number
    statusCodeStats: Record<string, { count: number }>
  }

  interface Instance extends EventEmitter {
    stop: () => void
    on (event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this
  }

  function autocannon (opts: Options, cb: (err: Error | null, result: Result) => void): Instance

  export default autocannon
  export type { Options, Result, Instance }
}
