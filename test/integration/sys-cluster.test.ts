// $SYS in a cluster [P-12.10], three gateway processes on one real
// redis-server: each node's own numbers under $SYS/brokers/<node>/…, and
// $SYS/broker/… and $SYS/rtw/… the sum of the live nodes, written by one of
// them. A node that stops takes its per-node topics with it; one killed with
// SIGKILL has them cleared by the others once it is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { gatewayNode, type GatewayNode } from '../helpers/nodes.js'
import { connectClient, recordMessages } from '../helpers/mqtt.js'
import { latestSys, startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

async function nodeId (node: GatewayNode): Promise<string> {
  return ((await (await fetch(`${node.httpUrl}/stats`)).json()) as { cluster: { node: string } }).cluster.node
}

/** The retained $SYS/brokers/… topics a fresh subscriber on `node` is sent: every one that arrives before a live update of `marker`. */
async function retainedPerNode (node: GatewayNode, marker: string): Promise<Set<string>> {
  const c = await connectClient(node.mqttUrl)
  try {
    const seen = recordMessages(c)
    await c.subscribeAsync('$SYS/brokers/#', { qos: 0 })
    await waitFor(() => seen.some(m => m.topic === marker && !m.retain), { what: `a live ${marker}` })
    return new Set(seen.filter(m => m.retain && m.payload.length > 0).map(m => m.topic))
  } finally {
    await c.endAsync(true)
  }
}

describe('$SYS in a cluster of three nodes on one Redis', () => {
  let redis: TestRedis
  const nodes: GatewayNode[] = []
  const ids: string[] = []
  const clients: MqttClient[] = []
  let sub: TestProcess
  beforeAll(async () => {
    redis = await startRedis()
    for (let i = 0; i < 3; i++) nodes.push(await gatewayNode({ redisUrl: redis.url, env: { RTW_SYS_INTERVAL_S: '1' } }))
    for (const n of nodes) ids.push(await nodeId(n))
  }, 60_000)
  afterAll(async () => {
    await sub?.killGroup()
    await Promise.all(clients.map(async c => await c.endAsync(true)))
    for (const n of nodes) await n.kill()
    await redis?.close()
  })

  it('publishes each node\'s numbers under $SYS/brokers/<node>/… and the cluster\'s sum under $SYS/broker/… and $SYS/rtw/…', async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode]
    // One client on a (mosquitto_sub itself), two on b, three on c.
    sub = startProcess('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(a.mqttPort), '-V', 'mqttv311', '-t', '$SYS/#', '-v'])
    for (const [node, n] of [[b, 2], [c, 3]] as const) for (let i = 0; i < n; i++) clients.push(await connectClient(node.mqttUrl))
    // Refused calls are counted too: one on a, two on b, three on c.
    for (const [node, n] of [[a, 1], [b, 2], [c, 3]] as const) {
      for (let i = 0; i < n; i++) expect((await fetch(`${node.httpUrl}/api/nobody/x`, { method: 'POST', body: 'x' })).status).toBe(404)
    }
    const [ia, ib, ic] = ids as [string, string, string]
    const values = await waitFor(() => {
      const v = latestSys(sub.output())
      const stats = v.has('$SYS/rtw/stats') ? JSON.parse(v.get('$SYS/rtw/stats') as string) as { clients: number, nodes?: string[], requests: Record<string, Record<string, number>> } : undefined
      const ok = v.get(`$SYS/brokers/${ia}/clients/connected`) === '1' && v.get(`$SYS/brokers/${ib}/clients/connected`) === '2' &&
        v.get(`$SYS/brokers/${ic}/clients/connected`) === '3' && v.get('$SYS/broker/clients/connected') === '6' &&
        stats?.nodes?.length === 3 && stats.requests.nobody?.['404'] === 6
      return ok ? v : undefined
    }, { timeoutMs: 20_000, what: 'per-node client counts 1, 2 and 3 and a cluster sum of 6 clients and 6 requests' })
    expect(JSON.parse(values.get('$SYS/rtw/stats') as string).nodes).toEqual([...ids].sort())
    expect(values.get(`$SYS/brokers/${ib}/rtw/requests/total`)).toBe('2')
    expect(values.get('$SYS/rtw/requests/total')).toBe('6')
    expect(values.get(`$SYS/brokers/${ic}/version`)).toMatch(/^RealTime-Web /)
  }, 40_000)

  it('a node that stops takes its topics with it, and leaves the sum', async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode]
    const [ia, ib] = ids as [string, string]
    expect([...await retainedPerNode(a, `$SYS/brokers/${ia}/uptime`)].some(t => t.startsWith(`$SYS/brokers/${ib}/`))).toBe(true)
    await b.stop()
    const left = await retainedPerNode(a, `$SYS/brokers/${ia}/uptime`)
    expect([...left].filter(t => t.startsWith(`$SYS/brokers/${ib}/`))).toEqual([])
    expect(left.has(`$SYS/brokers/${ia}/clients/connected`)).toBe(true)
    await waitFor(() => {
      const stats = JSON.parse(latestSys(sub.output()).get('$SYS/rtw/stats') ?? '{}') as { nodes?: string[] }
      return stats.nodes?.length === 2 && !stats.nodes.includes(ib)
    }, { timeoutMs: 15_000, what: 'the sum without the stopped node' })
  }, 40_000)

  it('a node killed with SIGKILL has its topics cleared by the others once it is gone', async () => {
    const a = nodes[0] as GatewayNode
    const c = nodes[2] as GatewayNode
    const [ia, , ic] = ids as [string, string, string]
    await c.kill()
    await waitFor(async () => ![...await retainedPerNode(a, `$SYS/brokers/${ia}/uptime`)].some(t => t.startsWith(`$SYS/brokers/${ic}/`)),
      { timeoutMs: 20_000, intervalMs: 200, what: 'the killed node\'s retained topics to be cleared' })
    await waitFor(() => {
      const v = latestSys(sub.output())
      const stats = JSON.parse(v.get('$SYS/rtw/stats') ?? '{}') as { nodes?: string[] }
      return stats.nodes?.length === 1 && stats.nodes[0] === ia && v.get('$SYS/broker/clients/connected') === '1'
    }, { timeoutMs: 15_000, what: 'the sum of the one node left' })
  }, 40_000)
})
