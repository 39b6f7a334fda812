// A node whose Redis dies under a persistent session that has just subscribed
// keeps running (Aedes reads the retained messages of a SUBSCRIBE with no
// error listener, broker/backends.ts), and stops promptly on SIGTERM while
// Redis is still gone (mqemitter-redis and the store would wait on QUIT forever).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { gatewayNode, type GatewayNode } from '../helpers/nodes.js'

describe('a node whose Redis dies', () => {
  let redis: TestRedis
  let node: GatewayNode
  let client: MqttClient | undefined

  beforeAll(async () => {
    redis = await startRedis()
    node = await gatewayNode({ redisUrl: redis.url })
  }, 60_000)
  afterAll(async () => {
    client?.end(true)
    await node?.kill()
    await redis?.close()
  })

  it('survives Redis dying under a fresh persistent subscription, and stops on SIGTERM while Redis is gone', async () => {
    client = await connectClient(node.mqttUrl, { clientId: `gone-${process.pid}`, clean: false })
    // Wildcard and exact filters: both retained lookups are in flight when Redis dies.
    await subscribe(client, 'sensors/#', 1)
    client.subscribe('sensors/exact', { qos: 1 })
    await redis.kill()
    // Still serving HTTP after the Redis commands of that SUBSCRIBE failed.
    const ready = await fetch(`${node.httpUrl}/readyz`)
    expect([200, 503]).toContain(ready.status)
    const health = await fetch(`${node.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(node.proc.exited).toBeUndefined()
    await node.stop()
    expect(node.proc.exited?.signal ?? null).toBeNull()
    expect(node.proc.output()).not.toMatch(/Unhandled 'error' event|MaxRetriesPerRequestError:.*\n\s+at /)
  })
})
