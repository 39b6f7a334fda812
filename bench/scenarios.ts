// What `npm run bench` measures. Each HTTP scenario starts its servers, names
// the request to send, and may name a reference scenario its figures are
// divided by. Add a row by adding an entry here.
import { RABBITMQ_SERVER, acceptsAmqp, rabbitInstalled, startRabbitNode } from '../scripts/rabbitmq-node.js'
import { startNode, track, type Child } from './lib/children.js'
import { startGatewayWithEcho, type GatewayOptions } from './lib/gateway.js'
import type { HttpRequestSpec } from './lib/http-load.js'
import { CLUSTER_SCENARIOS } from './cluster.js'
import { fileURLToPath } from 'node:url'

export interface Started {
  request: HttpRequestSpec
  /** Several targets (the nodes of a cluster): the connections are split evenly between them, and `request` is ignored. */
  requests?: HttpRequestSpec[]
  /** Processes whose CPU use is reported beside the figures (name: the part after the last ":"). */
  processes: Array<Pick<Child, 'name'> & { proc: { readonly pid?: number } }>
  stop: () => Promise<void>
}

export interface HttpScenario {
  name: string
  /** Ratios in the table are this scenario over the reference. */
  reference?: string
  about: string
  /** Print each process's CPU per request beside its reference's: where the row's extra cost goes. */
  perProcessCpu?: boolean
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

/**
 * Issue 3: a queued echo service, REST -> gateway -> durable queue rtw.req.echo ->
 * echo AMQP worker -> reply queue -> REST, compared with the MQTT responder path.
 * RabbitMQ is the one in RTW_AMQP_URL, or else a private node started for the
 * row (scripts/rabbitmq-node.ts) and stopped with it; without either it is skipped.
 *   BENCH_AMQP_PREFETCH  the worker's prefetch (default 100: the worker's own default of 10
 *                        caps it at 10 requests in flight, below the higher connection counts)
 */
function queuedScenario (name: string): HttpScenario {
  const external = process.env.RTW_AMQP_URL ?? ''
  const prefetchSetting = process.env.BENCH_AMQP_PREFETCH ?? '100'
  return {
    name,
    reference: 'gateway',
    about: `as gateway, with echo a queued service: REST -> gateway -> RabbitMQ queue rtw.req.echo (persistent, confirmed) -> ` +
      `dist/echo-server/amqp-worker.js (prefetch ${prefetchSetting}) -> rtw.reply.<node> -> REST; RabbitMQ ${external === '' ? 'a private node started for the row' : 'from RTW_AMQP_URL (its CPU is in "other")'}`,
    skip: () => external !== '' || rabbitInstalled()
      ? undefined
      : `RTW_AMQP_URL is not set and ${RABBITMQ_SERVER} is not installed (apt-get install -y rabbitmq-server)`,
    async start () {
      const prefetch = Math.round(Number(prefetchSetting))
      if (!(prefetch > 0)) throw new Error(`BENCH_AMQP_PREFETCH must be a positive number (got ${prefetchSetting})`)
      let url = external
      let stopRabbit = async (): Promise<void> => {}
      const processes: Started['processes'] = []
      if (url === '') {
        process.stderr.write(`  ${name}: starting a private RabbitMQ node…\n`)
        const node = await startRabbitNode({ namePrefix: 'rtw-bench' })
        // Its data is thrown away, so there is nothing to stop gracefully: SIGKILL, then delete the dir.
        stopRabbit = track({ name: 'rabbitmq', stop: async () => { await node.kill(); await node.close() }, stopSync: node.closeSync })
        url = node.url
        processes.push({ name: 'rabbitmq', proc: { pid: node.vmPid() } })
      } else if (!await acceptsAmqp(url, 10_000)) {
        throw new Error(`${name}: RabbitMQ at RTW_AMQP_URL does not accept AMQP connections`)
      }
      const extra = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')
      // BENCH_PROFILE=<this row> profiles the worker too; its profile is the other file in .tmp/bench-profiles.
      const gw = await startGatewayWithEcho(name, {
        amqp: { url, prefetch },
        gatewayExecArgv: [...extra, ...(profileFlags(name) ?? [])],
        echoExecArgv: profileFlags(name)
      }).catch(async (err: unknown) => { await stopRabbit(); throw err })
      if (process.env.BENCH_PROFILE === name) process.stderr.write(`  ${name}: profiling gateway pid ${gw.gateway.proc.pid}, worker pid ${gw.echo.proc.pid}\n`)
      return {
        request: { url: `${gw.httpUrl}/api/echo/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [gw.gateway, gw.echo, ...processes],
        async stop () {
          await gw.stop()
          await stopRabbit()
        }
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
  {
    // Interleaved with the gateway row; bench/run.ts prints the difference in gateway CPU per request.
    ...gatewayScenario('gateway-nometrics', 'as gateway, with per-request metrics counting turned into a no-op (bench/lib/no-request-metrics.ts), for what counting costs',
      { gatewayExecArgv: [`--import=${fileURLToPath(new URL('./lib/no-request-metrics.js', import.meta.url))}`] }),
    reference: 'gateway'
  },
  gatewayScenario('gateway-qos1', 'as gateway, with requests published at QoS 1 (RTW_REQUEST_QOS=1)', { gatewayEnv: { RTW_REQUEST_QOS: '1' } }),
  gatewayScenario('gateway-reply1', 'as gateway, with the echo server replying at QoS 1 (ECHO_REPLY_QOS=1)', { echoEnv: { ECHO_REPLY_QOS: '1' } }),
  {
    // For performance work: copy a build aside (cp -r dist .tmp/dist-before) and compare it in the same run.
    ...gatewayScenario('gateway-alt', `as gateway, from the build in BENCH_ALT_DIST (${process.env.BENCH_ALT_DIST ?? 'unset'})`, { distDir: process.env.BENCH_ALT_DIST }),
    skip: () => process.env.BENCH_ALT_DIST === undefined ? 'BENCH_ALT_DIST is not set' : undefined
  },
  queuedScenario('gateway-queued'),
  ...CLUSTER_SCENARIOS
]

/** Rows run when BENCH_SCENARIOS is not set; "all" runs every row. */
export const DEFAULT_SCENARIOS = ['bare', 'gateway', 'gateway-nometrics', 'gateway-qos1', 'gateway-queued', 'gateway-datadir', 'cluster-local', 'cluster-cross', 'cluster-scaleout']
