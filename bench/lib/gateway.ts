// Starts the real gateway and the echo server, each as its own process on
// free ports, as `npm start` would, and waits until a request goes through.
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
}

const HOST = '127.0.0.1'

/**
 * Settings the bench changes from the gateway's defaults, printed with the results.
 * publishRate (default 1000 PUBLISH/s per client) also limits responders: the
 * echo server's replies past 1000/s are dropped, their callers wait for the
 * timeout, and REST throughput collapses to a few hundred requests/s. An
 * RTW_PUBLISH_RATE in the environment wins.
 */
export const GATEWAY_OVERRIDES: Record<string, string> = {
  RTW_PUBLISH_RATE: process.env.RTW_PUBLISH_RATE ?? '1000000'
}

export async function startGatewayWithEcho (name: string, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const httpPort = await freePort(HOST)
  const mqttPort = await freePort(HOST)
  const dist = opts.distDir ?? 'dist'
  const gateway = startNode(`${name}:gateway`, `${dist}/gateway/main.js`, {
    env: { RTW_HOST: HOST, RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_LOG_LEVEL: 'warn', ...GATEWAY_OVERRIDES, ...opts.gatewayEnv },
    execArgv: opts.gatewayExecArgv
  })
  const httpUrl = `http://${HOST}:${httpPort}`
  await waitUntil(`${name}: gateway /healthz`, gateway, async () => (await fetch(`${httpUrl}/healthz`)).ok)
  const echo = startNode(`${name}:echo`, `${dist}/echo-server/main.js`, {
    env: { RTW_HOST: HOST, RTW_MQTT_PORT: String(mqttPort), ...opts.echoEnv }
  })
  await echo.waitForLine(/answering/)
  await waitUntil(`${name}: a request through the echo server`, echo, async () => {
    const res = await fetch(`${httpUrl}/api/echo/ping`, { method: 'POST', body: 'ping' })
    return res.status === 200 && await res.text() === 'ping'
  })
  return {
    httpUrl,
    mqttUrl: `mqtt://${HOST}:${mqttPort}`,
    wsUrl: `ws://${HOST}:${httpPort}/mqtt`,
    gateway,
    echo,
    async stop () {
      await echo.stop()
      await gateway.stop()
    }
  }
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
