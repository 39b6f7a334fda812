// Gateway processes from dist/ (as pm2 runs them) on free ports: the nodes of
// the cluster and durability tests. Each can be killed with SIGKILL and started
// again on the same ports and directory.
import type { MqttClient } from 'mqtt'
import { connectClient, subscribe } from './mqtt.js'
import { freePort } from './ports.js'
import { startProcess, type TestProcess } from './processes.js'
import { waitFor } from './wait.js'

const GATEWAY = 'dist/gateway/main.js'
const ECHO = 'dist/echo-server/main.js'

export interface GatewayNode {
  httpPort: number
  mqttPort: number
  httpUrl: string
  mqttUrl: string
  wsUrl: string
  proc: TestProcess
  /** Starts the process (again, after kill()); resolves once it listens. */
  start: () => Promise<void>
  /** kill -9: no drain, no goodbye to the cluster. */
  kill: () => Promise<void>
  /** SIGTERM and wait for the exit. */
  stop: () => Promise<void>
}

export interface NodeOptions {
  redisUrl?: string
  dataDir?: string
  env?: Record<string, string>
}

export async function gatewayNode (opts: NodeOptions = {}): Promise<GatewayNode> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const env: Record<string, string> = {
    RTW_HOST: '127.0.0.1',
    RTW_HTTP_PORT: String(httpPort),
    RTW_MQTT_PORT: String(mqttPort),
    RTW_SHUTDOWN_GRACE_MS: '1000',
    RTW_LOG_LEVEL: 'info',
    RTW_AMQP_URL: '',
    ...(opts.redisUrl === undefined ? {} : { RTW_REDIS_URL: opts.redisUrl }),
    ...(opts.dataDir === undefined ? {} : { RTW_DATA_DIR: opts.dataDir }),
    ...opts.env
  }
  const node: GatewayNode = {
    httpPort,
    mqttPort,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}/mqtt`,
    proc: undefined as unknown as TestProcess,
    async start () {
      node.proc = startProcess('node', [GATEWAY], { env })
      await node.proc.waitForOutput(/gateway ready/, 20_000)
    },
    async kill () {
      await node.proc.killGroup()
    },
    async stop () {
      node.proc.signal('SIGTERM')
      await node.proc.waitForExit(15_000)
    }
  }
  await node.start()
  return node
}

/** The echo server (dist/echo-server) connected to the given broker URLs, first one first. */
export function echoServer (urls: string[], env: Record<string, string> = {}): TestProcess {
  return startProcess('node', [ECHO], { env: { ECHO_MQTT_URL: urls.join(','), ...env } })
}

/** Waits until a REST call to the service on this node gets a 200. */
export async function serviceAnswers (node: GatewayNode, service = 'echo', timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => (await fetch(`${node.httpUrl}/api/${service}/ping?timeout=2`, { method: 'POST', body: 'ping' })).status === 200,
    { timeoutMs, intervalMs: 50, what: `${service} to answer on ${node.httpUrl}` })
}

/** A REST call to a service on a node, with its timeout in seconds. */
export async function callService (node: GatewayNode, service: string, body = 'hi', timeoutS = 5): Promise<Response> {
  return await fetch(`${node.httpUrl}/api/${service}/p?timeout=${timeoutS}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
}

/** A responder that answers every request with `<service>:<body>` on its $rid reply topic, and records the envelope ids it was sent. */
export async function responder (url: string, service: string): Promise<{ client: MqttClient, ids: string[] }> {
  const client = await connectClient(url)
  const ids: string[] = []
  client.on('message', (_topic, payload) => {
    const env = JSON.parse(payload.toString()) as { id: string, replyTo: string, body?: string }
    ids.push(env.id)
    client.publish(env.replyTo, JSON.stringify({ id: env.id, status: 200, body: `${service}:${env.body ?? ''}` }))
  })
  await subscribe(client, `$req/${service}/#`, 1)
  return { client, ids }
}
