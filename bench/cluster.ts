// Bench rows for durable state and clusters (docs/CLUSTER.md), beside the
// single in-memory node they are divided by:
//   gateway-datadir   one node with dataDir (LevelDB): QoS 0 requests are not stored, so it should not slow down
//   cluster-local     one node with redisUrl, the responder on it: the cost of routing through Redis
//   cluster-cross     two nodes, the call on A and the responder on B: the cost of the hop between nodes
// The redis-server is a private one (scripts/redis-node.ts); its CPU is a column of its own.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisInstalled, REDIS_SERVER, startRedisNode } from '../scripts/redis-node.js'
import { startNode, track, type Child } from './lib/children.js'
import { startGatewayWithEcho, type RunningGateway } from './lib/gateway.js'
import { freePort } from './lib/ports.js'
// BODY is read only when a row starts, after scenarios.ts (which imports this file) has run.
import { BODY, type HttpScenario, type Started } from './scenarios.js'

const HOST = '127.0.0.1'
const JSON_HEADERS = { 'content-type': 'application/json' }

/** The pid of the redis-server listening on port (it runs under a watchdog shell, whose pid is not its own). */
function redisPid (port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      if (argv[0]?.endsWith('redis-server') === true && argv.includes(String(port))) return Number(entry)
      if (argv[0]?.includes('redis-server') === true && argv[0].includes(`:${port}`)) return Number(entry)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

async function privateRedis (): Promise<{ url: string, pid: number | undefined, stop: () => Promise<void> }> {
  const node = await startRedisNode()
  const stop = track({ name: 'redis', stop: async () => { await node.close() }, stopSync: () => {} })
  return { url: node.url, pid: redisPid(node.port), stop }
}

/** A gateway node without a responder of its own, joined to the cluster at redisUrl. */
async function bareNode (name: string, redisUrl: string): Promise<{ httpUrl: string, child: Child }> {
  const httpPort = await freePort(HOST)
  const mqttPort = await freePort(HOST)
  const child = startNode(name, 'dist/gateway/main.js', {
    env: { RTW_HOST: HOST, RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_LOG_LEVEL: 'warn', RTW_AMQP_URL: '', RTW_REDIS_URL: redisUrl }
  })
  return { httpUrl: `http://${HOST}:${httpPort}`, child }
}

/** Waits until the node answers an echo request (it listens, and sees a responder somewhere in the cluster). */
async function answers (url: string, child: Child): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      const res = await fetch(`${url}/api/echo/ping`, { method: 'POST', body: 'ping' })
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no echo answer through ${url}\n${child.tail()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const needsRedis = (): string | undefined => redisInstalled() ? undefined : `${REDIS_SERVER} is not installed (apt-get install -y redis-server)`

export const CLUSTER_SCENARIOS: HttpScenario[] = [
  {
    name: 'gateway-datadir',
    reference: 'gateway',
    about: 'as gateway, with RTW_DATA_DIR set (broker state in LevelDB); requests are QoS 0, so nothing on their path is stored',
    async start (): Promise<Started> {
      const dir = mkdtempSync(join(tmpdir(), 'rtw-bench-data-'))
      const gw = await startGatewayWithEcho('gateway-datadir', { gatewayEnv: { RTW_DATA_DIR: dir } })
      return {
        request: { url: `${gw.httpUrl}/api/echo/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [gw.gateway, gw.echo],
        async stop () { await gw.stop(); rmSync(dir, { recursive: true, force: true }) }
      }
    }
  },
  {
    name: 'cluster-local',
    reference: 'gateway',
    about: 'as gateway, with RTW_REDIS_URL: one node of a cluster, the responder on it; every request goes out to Redis and back (mqemitter-redis)',
    skip: needsRedis,
    async start (): Promise<Started> {
      const redis = await privateRedis()
      const gw = await startGatewayWithEcho('cluster-local', { gatewayEnv: { RTW_REDIS_URL: redis.url } })
      return {
        request: { url: `${gw.httpUrl}/api/echo/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [gw.gateway, gw.echo, { name: 'redis', proc: { pid: redis.pid } }],
        async stop () { await gw.stop(); await redis.stop() }
      }
    }
  },
  {
    name: 'cluster-cross',
    reference: 'gateway',
    about: 'two nodes on one Redis: REST on node A, the echo responder on node B; the request goes A -> Redis -> B, the reply B -> Redis -> A',
    skip: needsRedis,
    async start (): Promise<Started> {
      const redis = await privateRedis()
      const b: RunningGateway = await startGatewayWithEcho('cluster-cross:b', { gatewayEnv: { RTW_REDIS_URL: redis.url } })
      const a = await bareNode('cluster-cross:a', redis.url)
      await answers(a.httpUrl, a.child)
      return {
        request: { url: `${a.httpUrl}/api/echo/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY },
        processes: [{ name: 'node-a', proc: a.child.proc }, { name: 'node-b', proc: b.gateway.proc }, b.echo, { name: 'redis', proc: { pid: redis.pid } }],
        async stop () { await a.child.stop(); await b.stop(); await redis.stop() }
      }
    }
  }
]
