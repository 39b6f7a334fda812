// Starts an in-process gateway on free ports (port 0) and closes it after the test.
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildOptions } from '../../gateway/app.js'
import { loadConfig, type Config, type ConfigInput } from '../../gateway/config.js'

export interface TestGateway {
  app: FastifyInstance
  config: Config
  httpUrl: string
  mqttUrl: string
  wsUrl: string
  mqttPort: number
  httpPort: number
  close: () => Promise<void>
}

export async function startGateway (overrides: Partial<ConfigInput> = {}, build: BuildOptions = {}): Promise<TestGateway> {
  const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, logLevel: 'silent', ...overrides } })
  const app = await buildApp(config, build)
  await app.listen({ port: config.httpPort, host: config.host, backlog: 4096 }) // as gateway/main.ts does
  const mqtt = await app.broker.listenTcp(config.mqttPort, config.host)
  const addr = app.server.address()
  const httpPort = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    app,
    config,
    httpPort,
    mqttPort: mqtt.port,
    httpUrl: `http://${config.host}:${httpPort}`,
    mqttUrl: `mqtt://${config.host}:${mqtt.port}`,
    wsUrl: `ws://${config.host}:${httpPort}${config.wsPath}`,
    close: () => app.close()
  }
}

export interface Stats {
  inFlight: number
  settled: number
  timedOut: number
  cancelled: number
  dropped: Record<'late' | 'duplicate' | 'unknown' | 'retained' | 'undecodable' | 'wrong-service' | 'not-asked', number>
  clients: number
}

/** GET /stats of a running gateway; with auth on, pass a token granted `$SYS/#`. */
export async function getStats (httpUrl: string, token?: string): Promise<Stats> {
  const res = await fetch(`${httpUrl}/stats`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
  if (res.status !== 200) throw new Error(`/stats answered ${res.status}`)
  return await res.json() as Stats
}
