// The fan-out-across-nodes rows of `npm run bench` (issue 12): one MQTT
// publisher on node A of a two-node cluster, its subscribers on node B,
// against the same fan-out with the subscribers on node A, in the same run,
// interleaved round by round. CPU per delivered message, by process.
//   BENCH_CLUSTER_FANOUT   "0" skips these rows
//   BENCH_FANOUT_SUBSCRIBERS  subscribers per side (default 100)
//   BENCH_FANOUT_MESSAGES     messages per round (default 500)
import mqtt, { type MqttClient } from 'mqtt'
import { mqttReceivers, until, type Receivers } from './lib/receivers.js'
import { needsRedis, privateRedis } from './cluster.js'
import { startCpuMeter, type CpuShares } from './lib/cpu.js'
import { startGatewayWithEcho } from './lib/gateway.js'
import { fmtInt, fmtRatio, renderTable } from './lib/table.js'

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const SUBSCRIBERS = num('BENCH_FANOUT_SUBSCRIBERS', 100)
const MESSAGES = num('BENCH_FANOUT_MESSAGES', 500)
const PAYLOAD = 'x'.repeat(100)

interface Side extends Receivers { label: string, topic: string }
interface Round { perSecond: number, cpu: CpuShares, seconds: number, deliveries: number, complete: boolean }

async function subscribers (url: string, topic: string, label: string): Promise<Side> {
  return { label, topic, ...await mqttReceivers(url, SUBSCRIBERS, topic, 50) }
}

async function round (pub: MqttClient, side: Side, pids: Array<{ name: string, pid: number | undefined }>): Promise<Round> {
  const start = side.count()
  const meter = startCpuMeter(pids)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < MESSAGES; i++) pub.publish(side.topic, PAYLOAD, { qos: 0 })
  const complete = await until(() => side.count() - start >= MESSAGES * SUBSCRIBERS, 60_000)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const deliveries = side.count() - start
  return { perSecond: deliveries / seconds, cpu: meter(), seconds, deliveries, complete }
}

const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor((xs.length - 1) / 2)] as T

/** Server CPU (every process but this one and the rest of the machine) per delivery, in µs, in all and by process. */
function cpuPerDelivery (r: Round): { total: number, by: string } {
  const servers = r.cpu.shares.filter(([name]) => name !== 'load' && name !== 'other')
  const us = (cores: number | undefined): number => (cores ?? NaN) * r.seconds * 1e6 / Math.max(1, r.deliveries)
  return { total: servers.reduce((n, [, v]) => n + us(v), 0), by: servers.map(([name, v]) => `${name} ${us(v).toFixed(2)}`).join(', ') }
}

export async function benchClusterFanout (rounds: number): Promise<boolean> {
  const skip = needsRedis()
  if (skip !== undefined) { console.log(`\nskipping the fan-out across nodes: ${skip}`); return false }
  const redis = await privateRedis()
  const env = { gatewayEnv: { RTW_REDIS_URL: redis.url, RTW_CONNECT_RATE: '100000' } }
  const a = await startGatewayWithEcho('fanout:node-a', env)
  const b = await startGatewayWithEcho('fanout:node-b', env)
  const pids = [{ name: 'node-a', pid: a.gateway.proc.pid }, { name: 'node-b', pid: b.gateway.proc.pid }, { name: 'redis', pid: redis.pid }]
  let failed = false
  try {
    const pub = await mqtt.connectAsync(a.mqttUrl, { reconnectPeriod: 0 })
    const local = await subscribers(a.mqttUrl, 'bench/fan/local', 'one node: publisher and subscribers on A (reference)')
    const remote = await subscribers(b.mqttUrl, 'bench/fan/remote', 'across nodes: publisher on A, subscribers on B')
    const results = new Map<Side, Round[]>([[local, []], [remote, []]])
    for (let i = 1; i <= rounds; i++) {
      for (const side of i % 2 === 1 ? [local, remote] : [remote, local]) {
        process.stderr.write(`  round ${i}/${rounds}: fan-out, ${side.label}…\n`)
        const r = await round(pub, side, pids)
        if (!r.complete) failed = true
        results.get(side)?.push(r)
      }
    }
    local.close()
    remote.close()
    await pub.endAsync()
    const mid = (side: Side): Round => median(results.get(side) ?? [], r => r.perSecond)
    const ref = mid(local)
    console.log(`\nFan-out across cluster nodes (issue 12): ${MESSAGES} QoS 0 messages of ${PAYLOAD.length} bytes to ${SUBSCRIBERS} MQTT subscribers, ` +
      `two nodes on one Redis, median of ${rounds} interleaved rounds`)
    console.log(renderTable(['row', 'deliveries/s', 'vs one node', 'server CPU µs/delivery', 'vs one node', 'by process, µs/delivery'], [local, remote].map(side => {
      const r = mid(side)
      const cpu = cpuPerDelivery(r)
      return [side.label, fmtInt(r.perSecond), fmtRatio(r.perSecond / ref.perSecond), cpu.total.toFixed(2), fmtRatio(cpu.total / cpuPerDelivery(ref).total), cpu.by]
    })))
    console.log('  Across nodes, A publishes each message to Redis once, and B receives it from Redis and delivers it to its subscribers;' +
      ' in both rows every message also goes to every node as its $history copy (gateway/plugins/history.ts)')
    if (failed) console.log('Some fan-out rounds did not complete within 60 s: the figures are not clean.')
  } finally {
    await a.stop()
    await b.stop()
    await redis.stop()
  }
  return failed
}
