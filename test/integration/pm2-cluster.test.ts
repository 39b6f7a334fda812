// `RTW_INSTANCES=2` with `RTW_REDIS_URL`: pm2 runs two gateway processes in
// cluster mode on the same ports, each a node of one cluster on a real
// redis-server. Connections are spread over both, and every one of them is
// answered by the one echo server, whichever process it reached.
import { mkdtempSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, freePortRun } from '../helpers/ports.js'
import { parseExposition } from '../helpers/prometheus.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

/** GET on a connection of its own (no keep-alive), so pm2 may hand it to either process. */
async function freshGet (url: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    get(url, { agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
}

describe('pm2 cluster mode: RTW_INSTANCES=2 with RTW_REDIS_URL', () => {
  const pm2Home = mkdtempSync(join(tmpdir(), 'rtw-pm2-cluster-'))
  let redis: TestRedis
  let proc: TestProcess
  let httpUrl: string
  let metricsPort: number

  beforeAll(async () => {
    redis = await startRedis()
    const httpPort = await freePort()
    const mqttPort = await freePort()
    metricsPort = await freePortRun(2)
    httpUrl = `http://127.0.0.1:${httpPort}`
    proc = startProcess('node_modules/.bin/pm2-runtime', ['start', 'ecosystem.config.js'], {
      env: {
        PM2_HOME: pm2Home,
        RTW_HOST: '127.0.0.1',
        RTW_HTTP_PORT: String(httpPort),
        RTW_MQTT_PORT: String(mqttPort),
        RTW_SHUTDOWN_GRACE_MS: '2000',
        RTW_INSTANCES: '2',
        RTW_METRICS_PORT: String(metricsPort),
        RTW_REDIS_URL: redis.url,
        RTW_AMQP_URL: ''
      }
    })
  }, 30_000)
  afterAll(async () => {
    await proc?.killGroup()
    await redis?.close()
    rmSync(pm2Home, { recursive: true, force: true })
  })

  it('runs two gateway nodes on the same ports, and each answers REST through the one echo server', async () => {
    const nodes = new Set<string>()
    try {
      // Until both processes have joined and the echo server has subscribed, some connections get 404 or nothing.
      await waitFor(async () => {
        const stats = await freshGet(`${httpUrl}/stats`)
        if (stats.status === 200) nodes.add((JSON.parse(stats.body) as { cluster: { node: string } }).cluster.node)
        return nodes.size === 2
      }, { timeoutMs: 40_000, intervalMs: 100, what: 'two distinct cluster nodes behind the one port' })
      const answers = new Set<number>()
      await waitFor(async () => {
        const res = await freshGet(`${httpUrl}/stats`)
        const s = JSON.parse(res.body) as { cluster: { nodes: string[] } }
        // Each process sees the other as a live node of its cluster.
        return s.cluster.nodes.length === 1
      }, { timeoutMs: 10_000, what: 'each node to know the other' })
      // The echo server connects once the gateway is up; until every node sees it, a call may get 404.
      let answered = 0
      await waitFor(async () => {
        for (let i = 0; i < 4; i++) {
          const res = await fetch(`${httpUrl}/api/echo/ping?timeout=5`, { method: 'POST', body: 'p', headers: { connection: 'close' } })
          await res.arrayBuffer()
          if (res.status !== 200) return false
          answered++
        }
        return true
      }, { timeoutMs: 20_000, intervalMs: 100, what: 'the echo server to answer through both processes' })
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${httpUrl}/api/echo/x?timeout=5`, { method: 'POST', body: `n${i}`, headers: { connection: 'close' } })
        answers.add(res.status)
        expect(await res.text()).toBe(`n${i}`)
      }
      expect([...answers]).toEqual([200])

      // Each process is scraped on a port of its own, metricsPort + its pm2 instance: two distinct nodes,
      // whose request counts add up to every call made through the shared port, whichever process took it.
      const scrapes = await Promise.all([0, 1].map(async i => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort + i}/metrics`)).text()
        const stats = await (await fetch(`http://127.0.0.1:${metricsPort + i}/stats`)).json() as { cluster: { node: string } }
        return { m: parseExposition(text), node: stats.cluster.node }
      }))
      expect(new Set(scrapes.map(s => s.node))).toEqual(nodes)
      expect(scrapes.reduce((n, s) => n + s.m.sum('rtw_requests_total', { service: 'echo', status: '200', transport: 'rest' }), 0)).toBe(20 + answered)
      expect(scrapes.every(s => (s.m.value('process_cpu_seconds_total') ?? 0) > 0)).toBe(true)
    } catch (err) {
      throw new Error(`${(err as Error).message}\npm2 output:\n${proc.output().slice(-4000)}`)
    }
  }, 60_000)
})
