// Starts the real gateway and the echo server, each as its own process on
// free ports, as `npm start` would, and waits until a request goes through.
// The echo server is the MQTT responder, or with `amqp` the echo AMQP worker
// of a queued echo service (docs/AMQP.md §3).
import { startNode, type Child } from './children.js'
import { freePort } from './ports.js'

export interface RunningGateway {
  httpUrl: string
  mqttUrl: string
  wsUrl: string
  gateway: Child
  echo: Child
  stop: () => Promise<void>
}

export interface GatewayOptions {
  /** Extra environment for the gateway, e.g. RTW_REQUEST_QOS. */
  gatewayEnv?: Record<string, string>
  /** Extra environment for the echo server, e.g. ECHO_REPLY_QOS. */
  echoEnv?: Record<string, string>
  /** node flags for the gateway, e.g. --cpu-prof. */
  gatewayExecArgv?: string[]
  /** The build to run (default dist), e.g. an older build copied aside to compare with. */
  distDir?: string
  /**
   * Queue echo requests in this RabbitMQ (RTW_QUEUED_SERVICES=echo) and answer
   * them with dist/echo-server/amqp-worker.js instead of the MQTT echo server.
   */
  amqp?: { url: string, prefetch: number }
  /** node flags for the echo server or worker, e.g. --cpu-prof. */
  echoExecArgv?: string[]
  /** The service the start waits to see answered (default echo; set it with echoEnv ECHO_TOPICS). */
  echoService?: string
}

const HOST = '127.0.0.1'

/**
 * Settings the bench changes from the gateway's defaults, printed with the
 * results: none, so the figures are those of `npm start`. RTW_* variables in
 * the bench's environment are passed through and named here.
 */
export const GATEWAY_OVERRIDES: Record<string, string> = Object.fromEntries(
  ['RTW_PUBLISH_RATE', 'RTW_REQUEST_QOS', 'RTW_MAX_IN_FLIGHT', 'RTW_MAX_IN_FLIGHT_PER_CLIENT']
    .filter(k => process.env[k] !== undefined).map(k => [k, process.env[k] as string])
)

export async function startGatewayWithEcho (name: string, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const httpPort = await freePort(HOST)
  const mqttPort = await freePort(HOST)
  const dist = opts.distDir ?? 'dist'
  // An RTW_AMQP_URL in the bench's own environment turns RabbitMQ on only where asked for.
  const amqpEnv = opts.amqp === undefined
    ? { RTW_AMQP_URL: '', RTW_QUEUED_SERVICES: '' }
    : { RTW_AMQP_URL: opts.amqp.url, RTW_QUEUED_SERVICES: 'echo' }
  const gateway = startNode(`${name}:gateway`, `${dist}/gateway/main.js`, {
    env: { RTW_HOST: HOST, RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_LOG_LEVEL: 'warn', ...amqpEnv, ...GATEWAY_OVERRIDES, ...opts.gatewayEnv },
    execArgv: opts.gatewayExecArgv
  })
  const httpUrl = `http://${HOST}:${httpPort}`
  // With RabbitMQ, /readyz also says it is connected and its queues are declared (an older build, BENCH_ALT_DIST, may lack /readyz).
  const ready = opts.amqp === undefined ? '/healthz' : '/readyz'
  await waitUntil(`${name}: gateway ${ready}`, gateway, async () => (await fetch(`${httpUrl}${ready}`)).ok, opts.amqp === undefined ? 10_000 : 30_000)
  let echo: Child
  if (opts.amqp === undefined) {
    echo = startNode(`${name}:echo`, `${dist}/echo-server/main.js`, {
      env: { RTW_HOST: HOST, RTW_MQTT_PORT: String(mqttPort), ...opts.echoEnv },
      execArgv: opts.echoExecArgv
    })
    await echo.waitForLine(/answering/)
  } else {
    echo = startNode(`${name}:worker`, `${dist}/echo-server/amqp-worker.js`, {
      env: { RTW_AMQP_URL: opts.amqp.url, ECHO_AMQP_SERVICES: 'echo', ECHO_AMQP_PREFETCH: String(opts.amqp.prefetch), ECHO_DELAY_MS: '0', ECHO_AMQP_LOG_IDS: '0', ...opts.echoEnv },
      execArgv: opts.echoExecArgv,
      stopLate: true
    })
    await echo.waitForLine(/amqp-worker: consuming/, 30_000)
  }
  await waitForEcho(`${name}: a request through the echo server`, echo, httpUrl, opts.echoService)
  return {
    httpUrl,
    mqttUrl: `mqtt://${HOST}:${mqttPort}`,
    wsUrl: `ws://${HOST}:${httpPort}/mqtt`,
    gateway,
    echo,
    async stop () {
      // A queued request waits for the worker, so the worker goes last: the gateway can drain.
      if (opts.amqp === undefined) await echo.stop()
      await gateway.stop()
      await echo.stop()
    }
  }
}

/** Waits until a call to the service through the gateway at httpUrl is answered (child: whose exit ends the wait). */
export async function waitForEcho (what: string, child: Child, httpUrl: string, service = 'echo'): Promise<void> {
  await waitUntil(what, child, async () => {
    const res = await fetch(`${httpUrl}/api/${service}/ping`, { method: 'POST', body: 'ping' })
    return res.status === 200 && await res.text() === 'ping'
  })
}

async function waitUntil (what: string, child: Child, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`${child.name} exited while waiting for ${what}\n${child.tail()}`)
    try {
      if (await check()) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${child.tail()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
