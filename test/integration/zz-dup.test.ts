import { afterAll, beforeAll, describe, it } from 'vitest'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { echoServer, gatewayNode, serviceAnswers, type GatewayNode } from '../helpers/nodes.js'
import type { TestProcess } from '../helpers/processes.js'

describe('scratch dup', () => {
  let redis: TestRedis
  let a: GatewayNode, b: GatewayNode
  let e: TestProcess
  beforeAll(async () => {
    redis = await startRedis()
    a = await gatewayNode({ redisUrl: redis.url }); b = await gatewayNode({ redisUrl: redis.url })
    e = echoServer([b.mqttUrl])
    await serviceAnswers(b)
  }, 60_000)
  afterAll(async () => { await e?.killGroup(); for (const n of [a, b]) await n?.kill(); await redis?.close() })
  it('dup', async () => {
    const { readFileSync } = await import('node:fs')
    const cpu = (pid: number): number => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]) }
    const ca = cpu(a.proc.pid), cb = cpu(b.proc.pid)
    for (let i = 0; i < 2000; i++) await fetch(`${b.httpUrl}/api/echo/x`, { method: 'POST', body: 'x' })
    console.log('cpu ticks a', cpu(a.proc.pid) - ca, 'b', cpu(b.proc.pid) - cb)
    const { execFileSync } = await import('node:child_process')
    console.log(execFileSync('redis-cli', ['-p', String(new URL(redis.url).port), 'CLIENT', 'LIST']).toString())
    for (const n of [a, b]) {
      const s = await (await fetch(`${n.httpUrl}/stats`)).json() as Record<string, unknown>
      console.log(n.httpUrl, JSON.stringify(s.messages), JSON.stringify(s.dropped), JSON.stringify(s.settled))
    }
  })
})
