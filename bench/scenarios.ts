// What `npm run bench` measures. Each HTTP scenario starts its servers, names
// the request to send, and may name a reference scenario its figures are
// divided by. Add a row by adding an entry here.
import { startNode, type Child } from './lib/children.js'
import { startGatewayWithEcho, type GatewayOptions } from './lib/gateway.js'
import type { HttpRequestSpec } from './lib/http-load.js'

export interface Started {
  request: HttpRequestSpec
  /** Processes whose CPU use is reported beside the figures. */
  processes: Child[]
  stop: () => Promise<void>
}

export interface HttpScenario {
  name: string
  /** Ratios in the table are this scenario over the reference. */
  reference?: string
  about: string
  /** A reason to leave the scenario out of this run, or undefined to run it. */
  skip?: () => string | undefined
  start: () => Promise<Started>
}

/** A small JSON body, as a typical API call carries. */
export const BODY = JSON.stringify({ hello: 'world', n: 42, tags: ['a', 'b'] })
const JSON_HEADERS = { 'content-type': 'application/json' }

/** node flags that write a profile on exit when BENCH_PROFILE names this scenario. */
function profileFlags (name: string): string[] | undefined {
  if (process.env.BENCH_PROFILE !== name) return undefined
  // BENCH_PROFILE_KIND=heap samples allocations instead (--heap-prof).
  return process.env.BENCH_PROFILE_KIND === 'heap'
    ? ['--heap-prof', '--heap-prof-dir=.tmp/bench-profiles']
    : ['--cpu-prof', '--cpu-prof-dir=.tmp/bench-profiles']
}

function gatewayScenario (name: string, about: string, opts: GatewayOptions = {}): HttpScenario {
  return {
    name,
    reference: 'bare',
    about,
    async start () {
      const extra = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')
      const gw = await startGatewayWithEcho(name, { ...opts, gatewayExecArgv: [...extra, ...(opts.gatewayExecArgv ?? []), ...(profileFlags(name) ?? [])] })
      return {
        request: { url: `${gw.httpUrl}/api/echo/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [gw.gateway, gw.echo],
        stop: gw.stop
      }
    }
  }
}

export const HTTP_SCENARIOS: HttpScenario[] = [
  {
    name: 'bare',
    about: 'a bare Fastify route echoing the raw body (bench/bare-server.ts), the reference',
    async start () {
      const child = startNode('bare', 'dist/bench/bare-server.js', { execArgv: profileFlags('bare') })
      const m = await child.waitForLine(/listening on (http:\/\/\S+)/)
      return {
        request: { url: `${m[1] as string}/echo`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [child],
        stop: child.stop
      }
    }
  },
  gatewayScenario('gateway', 'REST -> gateway -> $req/echo/bench -> echo-server process -> $res -> REST, default config'),
  gatewayScenario('gateway-qos0', 'as gateway, with requests published at QoS 0 (RTW_REQUEST_QOS=0)', { gatewayEnv: { RTW_REQUEST_QOS: '0' } }),
  gatewayScenario('gateway-reply1', 'as gateway, with the echo server replying at QoS 1 (ECHO_REPLY_QOS=1)', { echoEnv: { ECHO_REPLY_QOS: '1' } }),
  {
    // For performance work: copy a build aside (cp -r dist .tmp/dist-before) and compare it in the same run.
    ...gatewayScenario('gateway-alt', `as gateway, from the build in BENCH_ALT_DIST (${process.env.BENCH_ALT_DIST ?? 'unset'})`, { distDir: process.env.BENCH_ALT_DIST }),
    skip: () => process.env.BENCH_ALT_DIST === undefined ? 'BENCH_ALT_DIST is not set' : undefined
  }
  // Issue 3: the queued-service row goes here, compared with the MQTT responder path:
  //   { name: 'gateway-queued', reference: 'gateway', about: 'REST -> RabbitMQ queue rtw.req.echo -> echo AMQP worker -> REST',
  //     skip: () => process.env.RTW_AMQP_URL === undefined ? 'RTW_AMQP_URL is not set' : undefined,
  //     start: a gateway with RTW_AMQP_URL and RTW_QUEUED_SERVICES=echo (startGatewayWithEcho's gatewayEnv),
  //            plus dist/echo-server/amqp-worker.js as its responder (startNode), and the same request as 'gateway' }
  // Add its name to DEFAULT_SCENARIOS: the skip keeps `npm run bench` working without RabbitMQ.
]

/** Rows run when BENCH_SCENARIOS is not set; "all" runs every row. */
export const DEFAULT_SCENARIOS = ['bare', 'gateway', 'gateway-qos0']
