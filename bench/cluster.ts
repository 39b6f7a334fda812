// Bench rows for durable state and clusters (docs/CLUSTER.md), beside the
// single in-memory node (or the one-node cluster) they are divided by:
//   gateway-datadir   one node with dataDir (LevelDB): QoS 0 requests are not stored, so it should not slow down
//   cluster-local     one node with redisUrl, the responder on it: the cost of routing through Redis
//   cluster-cross     two nodes, the call on A and the responder on B: the cost of the hop between nodes
//   cluster-scaleout  two nodes, each with its own responder, the load split between them, against cluster-local
// The redis-server is a private one (scripts/redis-node.ts); its CPU is a column of its own, and the
// cluster rows print each process's CPU per request (run.ts), which says where a hop's cost goes.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisInstalled, REDIS_SERVER, startRedisNode } from '../scripts/redis-node.js'
import { track } from './lib/children.js'
import { startGatewayWithEcho, waitForEcho, type RunningGateway } from './lib/gateway.js'
import type { HttpRequestSpec } from './lib/http-load.js'
// BODY is read only when a row starts, after scenarios.ts (which imports this file) has run.
import { BODY, type HttpScenario, type Started } from './scenarios.js'

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

export interface PrivateRedis { url: string, pid: number | undefined, stop: () => Promise<void> }

export async function privateRedis (): Promise<PrivateRedis> {
  const node = await startRedisNode()
  const stop = track({ name: 'redis', stop: async () => { await node.close() }, stopSync: () => {} })
  return { url: node.url, pid: redisPid(node.port), stop }
}

export const needsRedis = (): string | undefined => redisInstalled() ? undefined : `${REDIS_SERVER} is not installed (apt-get install -y redis-server)`

const echoCall = (gw: RunningGateway, service = 'echo'): HttpRequestSpec =>
  ({ url: `${gw.httpUrl}/api/${service}/bench`, method: 'POST', headers: JSON_HEADERS, body: BODY })

/**
 * A cluster on one private Redis: node A with its echo server, and with
 * `nodes: 2` node B too. Where the load goes and which services each echo
 * server answers is what the rows differ in.
 */
function clusterRow (name: string, reference: string, about: string, shape: 'local' | 'cross' | 'scaleout'): HttpScenario {
  return {
    name,
    reference,
    about,
    perProcessCpu: true,
    skip: needsRedis,
    async start (): Promise<Started> {
      const redis = await privateRedis()
      const env = { gatewayEnv: { RTW_REDIS_URL: redis.url } }
      // cross: A answers no call itself (its echo server takes another service), so every call to A goes to B's.
      const a = await startGatewayWithEcho(`${name}:node-a`, shape === 'local' ? env : { ...env, echoEnv: { ECHO_TOPICS: '$req/echo-a/#' }, echoService: 'echo-a' })
      const b = shape === 'local' ? undefined : await startGatewayWithEcho(`${name}:node-b`, shape === 'scaleout' ? { ...env, echoEnv: { ECHO_TOPICS: '$req/echo-b/#' }, echoService: 'echo-b' } : env)
      // cross: A answers once it has learnt of B's responder (docs/CLUSTER.md, the cluster-wide view).
      if (shape === 'cross') await waitForEcho(`${name}: node A to reach node B's echo server`, a.gateway, a.httpUrl)
      const requests = shape === 'local' ? [echoCall(a)] : shape === 'cross' ? [echoCall(a)] : [echoCall(a, 'echo-a'), echoCall(b as RunningGateway, 'echo-b')]
      const processes: Started['processes'] = [
        { name: 'node-a', proc: a.gateway.proc }, { name: 'echo-a', proc: a.echo.proc },
        ...(b === undefined ? [] : [{ name: 'node-b', proc: b.gateway.proc }, { name: 'echo-b', proc: b.echo.proc }]),
        { name: 'redis', proc: { pid: redis.pid } }
      ]
      return {
        request: requests[0] as HttpRequestSpec,
        ...(requests.length > 1 ? { requests } : {}),
        processes,
        async stop () { await a.stop(); await b?.stop(); await redis.stop() }
      }
    }
  }
}

export const CLUSTER_SCENARIOS: HttpScenario[] = [
  {
    name: 'gateway-datadir',
    reference: 'gateway',
    about: 'as gateway, with RTW_DATA_DIR set (broker state in LevelDB); requests are QoS 0, so nothing on their path is stored',
    async start (): Promise<Started> {
      const dir = mkdtempSync(join(tmpdir(), 'rtw-bench-data-'))
      const gw = await startGatewayWithEcho('gateway-datadir', { gatewayEnv: { RTW_DATA_DIR: dir } })
      return {
        request: echoCall(gw),
        processes: [gw.gateway, gw.echo],
        async stop () { await gw.stop(); rmSync(dir, { recursive: true, force: true }) }
      }
    }
  },
  clusterRow('cluster-local', 'gateway',
    'as gateway, with RTW_REDIS_URL: one node of a cluster, the responder on it; every request goes out to Redis and back (mqemitter-redis)', 'local'),
  clusterRow('cluster-cross', 'cluster-local',
    'two nodes on one Redis: REST on node A, the echo responder on node B; the request goes A -> Redis -> B, the reply B -> Redis -> A', 'cross'),
  clusterRow('cluster-scaleout', 'cluster-local',
    'two nodes on one Redis, each with its own echo server (services echo-a, echo-b), the connections split evenly between them; ' +
    'its req/s ratio is the scale-out of a second process on this 2-core machine, where the load generator, both echo servers and redis-server share the same two cores, so it cannot reach 2x', 'scaleout')
]
