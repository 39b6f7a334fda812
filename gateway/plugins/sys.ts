// Publishes the $SYS topics (metrics/sys-topics.ts) every sysIntervalS,
// retained as Mosquitto publishes them, so a subscriber gets the latest values
// at once. They go through the broker like any other message: who may read
// them is decided by the subscribe rules of the $SYS namespace [P-12.7] and,
// with auth on, by the reader's subscribe grants ($SYS/# for all of them).
//
// In a cluster [P-12.10] each node publishes its own numbers under
// `$SYS/brokers/<node>/…` (as EMQX does), and `$SYS/broker/…` and
// `$SYS/rtw/…` are the cluster's sum, published by one node
// (metrics/cluster-readings.ts): every node writing its own there would
// overwrite the others' retained values through the shared store.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SysTopics, nodePrefixes, type Reading } from '../metrics/sys-topics.js'
import { READINGS, decodeReading, encodeReading, isSysLeader, sumReadings } from '../metrics/cluster-readings.js'
import type { ClusterNode } from '../cluster/node.js'
import { projectRoot } from './static.js'
import { LogLimiter } from '../log-limit.js'

function version (): string {
  try {
    return `RealTime-Web ${(JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version}`
  } catch {
    return 'RealTime-Web'
  }
}

async function sysPlugin (app: FastifyInstance): Promise<void> {
  const intervalS = app.config.sysIntervalS
  if (intervalS === 0) return
  const { broker, metrics, cluster } = app
  const v = version()
  const own = new SysTopics(v, cluster === null ? undefined : nodePrefixes(cluster.id))
  const limited = new LogLimiter(app.log)
  const publish = async (messages: Array<[string, string]>): Promise<void> => {
    await Promise.all(messages.map(async ([topic, payload]) => await new Promise<void>(resolve => {
      broker.publish(topic, Buffer.from(payload), 0, true, err => {
        if (err) limited.warn('sys-publish', `${topic}: ${err.message}`)
        resolve()
      })
    })))
  }
  const whole = cluster === null ? undefined : clusterSum(cluster, v, intervalS, publish, (err: Error) => limited.warn('sys-cluster', `$SYS cluster sum: ${err.message}`))
  let last: Reading | undefined
  let running = false
  const publishAll = async (): Promise<void> => {
    if (running || broker.aedes.closed) return
    running = true
    try {
      last = await metrics.reading(broker.aedes.connectedClients)
      // Not awaited: a slow store must not hold the next interval's numbers back.
      void publish(own.next(last).messages)
      await whole?.tick(last)
    } finally {
      running = false
    }
  }
  let timer: NodeJS.Timeout | undefined
  // The first set once the gateway is ready, then every interval.
  app.addHook('onReady', async () => {
    await publishAll()
    timer = setInterval(() => { void publishAll() }, intervalS * 1000)
    timer.unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    // A node leaving its cluster takes its retained per-node topics with it (before the broker closes: onClose runs in reverse order).
    if (cluster !== null && last !== undefined && !broker.aedes.closed) await clearTopics(publish, cluster.id, v, last)
    await whole?.leave()
  })
}

/** Empty retained payloads for every per-node topic of a node, which deletes them [MQTT-3.3.1-10]. */
async function clearTopics (publish: (m: Array<[string, string]>) => Promise<void>, node: string, v: string, r: Reading): Promise<void> {
  const names = new SysTopics(v, nodePrefixes(node)).next(r).messages.map(([topic]): [string, string] => [topic, ''])
  let timer: NodeJS.Timeout | undefined
  // Redis may be gone as the node stops: give up after a moment rather than hold the shutdown.
  await Promise.race([publish(names), new Promise<void>(resolve => { timer = setTimeout(resolve, 2_000) })])
  clearTimeout(timer)
}

/**
 * The cluster's sum: this node's reading into Redis each interval and, on the
 * one node that leads, every live node's added up and published under
 * $SYS/broker and $SYS/rtw. The leader also clears the per-node topics of a
 * node gone without a goodbye (killed): one no longer live whose last reading
 * is older than a few intervals, so a node that joined a moment ago is not
 * taken for one.
 */
function clusterSum (cluster: ClusterNode, v: string, intervalS: number, publish: (m: Array<[string, string]>) => Promise<void>, warn: (err: Error) => void): { tick: (r: Reading) => Promise<void>, leave: () => Promise<void> } {
  const whole = new SysTopics(v)
  const staleMs = Math.max(3 * intervalS * 1000, 3_000)
  const db = cluster.link.db
  return {
    async tick (r) {
      if (!cluster.link.up) return
      try {
        await db.hset(READINGS, cluster.id, encodeReading(r))
        if (!isSysLeader(cluster.id, cluster.view.nodes)) return
        const readings: Reading[] = [r]
        const nodes = [cluster.id]
        for (const [node, text] of Object.entries(await db.hgetall(READINGS))) {
          if (node === cluster.id) continue
          const other = decodeReading(text, r.latency.bounds)
          if (other !== null && cluster.view.isLive(node)) {
            readings.push(other)
            nodes.push(node)
          } else if (other === null || r.at - other.at > staleMs) {
            if (other !== null) await clearTopics(publish, node, v, other)
            await db.hdel(READINGS, node)
          }
        }
        void publish(whole.next(sumReadings(readings, nodes.sort())).messages)
      } catch (err) {
        warn(err as Error)
      }
    },
    async leave () {
      if (cluster.link.up) await db.hdel(READINGS, cluster.id).catch(() => {})
    }
  }
}

export default fp(sysPlugin, { name: 'rtw-sys', dependencies: ['rtw-broker', 'rtw-metrics'] })
