import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { echoServer, gatewayNode, serviceAnswers, type GatewayNode } from '../helpers/nodes.js'
import type { TestProcess } from '../helpers/processes.js'

describe('smoke', () => {
  let redis: TestRedis
  let a: GatewayNode
  let b: GatewayNode
  let echo: TestProcess
  beforeAll(async () => {
    redis = await startRedis()
    a = await gatewayNode({ redisUrl: redis.url })
    b = await gatewayNode({ redisUrl: redis.url })
    echo = echoServer([b.mqttUrl])
  }, 60_000)
  afterAll(async () => {
    await echo?.killGroup()
    await a?.kill(); await b?.kill()
    await redis?.close()
  })
  it('works', async () => {
    try {
      await serviceAnswers(b)
      await serviceAnswers(a)
    } catch (e) { console.log(a.proc.output(), b.proc.output(), echo.output()); throw e }
    const r = await fetch(`${a.httpUrl}/api/echo/x`, { method: 'POST', body: 'hi' })
    expect(await r.text()).toBe('hi')
    const n = await fetch(`${a.httpUrl}/api/nobody/x`, { method: 'POST', body: 'hi' })
    expect(n.status).toBe(404)
    console.log(await (await fetch(`${a.httpUrl}/readyz`)).text())
  }, 30_000)
})
