// A real gateway process from dist/ (npm test builds first) on free ports,
// for crash tests: `crash` is kill -9 of its process group, and `restart`
// starts it again with the same environment (the same ports and dataDir).
import { freePort } from './ports.js'
import { startProcess, type TestProcess } from './processes.js'
import { waitFor } from './wait.js'

export interface GatewayProcess {
  proc: TestProcess
  httpUrl: string
  mqttUrl: string
  /** SIGKILL, no shutdown of any kind; resolves once it is gone. */
  crash: () => Promise<void>
  /** Starts it again on the same ports and environment; resolves once it listens. */
  restart: () => Promise<void>
  /** Resolves once /readyz answers 200: every configured dependency (RabbitMQ, Redis) is connected. */
  ready: () => Promise<void>
}

export async function startGatewayProcess (env: Record<string, string>): Promise<GatewayProcess> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const fullEnv = { RTW_HOST: '127.0.0.1', RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_LOG_LEVEL: 'info', ...env }
  const spawn = async (): Promise<TestProcess> => {
    const proc = startProcess(process.execPath, ['dist/gateway/main.js'], { env: fullEnv })
    await proc.waitForOutput(/gateway ready/, 30_000)
    return proc
  }
  const gw: GatewayProcess = {
    proc: await spawn(),
    httpUrl: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    crash: async () => { await gw.proc.killGroup() },
    restart: async () => { gw.proc = await spawn() },
    ready: async () => {
      await waitFor(async () => (await fetch(`${gw.httpUrl}/readyz`)).status === 200, { timeoutMs: 30_000, what: `${gw.httpUrl}/readyz to answer 200` })
    }
  }
  return gw
}
