// GET /events on two nodes of one cluster (one redis-server): each message is
// recorded in the shared history once, by the node it was published on; the
// streams on every node get every message once; and a client that reconnects
// to the other node recovers what it missed there [P-14.1], [P-15.5].
import { request } from 'node:http'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient } from '../helpers/mqtt.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { openEvents, type SseReader } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'

describe.skipIf(!redisAvailable())('GET /events across two cluster nodes', () => {
  let redis: TestRedis
  let a: TestGateway
  let b: TestGateway
  let mqttB: MqttClient
  let db: Redis
  const open: SseReader[] = []
  const events = async (gw: TestGateway, query: string, headers: Record<string, string> = {}): Promise<SseReader> => {
    const r = await openEvents(`${gw.httpUrl}/events?${query}`, headers)
    open.push(r)
    return r
  }
  // A connection per publish: a kept-alive one that is busy when the gateway closes would hold the close up.
  const publishA = async (topic: string, payload: string): Promise<void> => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${a.httpUrl}/publish`, { method: 'POST', agent: false }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end(JSON.stringify({ topic, payload }))
    })
    expect(status).toBeLessThan(300)
  }

  beforeAll(async () => {
    redis = await startRedis()
    a = await startGateway({ redisUrl: redis.url })
    b = await startGateway({ redisUrl: redis.url })
    mqttB = await connectClient(b.mqttUrl)
    db = new Redis(redis.url)
  }, 30_000)
  afterEach(() => { for (const r of open.splice(0)) r.close() })
  afterAll(async () => {
    db?.disconnect()
    await mqttB?.endAsync()
    await a?.close()
    await b?.close()
    await redis?.close()
  })

  it('records each message once, and streams on both nodes get each once, with the same ids', async () => {
    const onA = await events(a, 'topic=c/%23')
    const onB = await events(b, 'topic=c/%23&topic=c/1')
    await waitFor(() => onA.lastEventId !== '' && onB.lastEventId !== '', { what: 'both streams to start' })
    const before = await db.xlen('rtw:history:log')
    await publishA('c/1', 'http on A')
    await onB.waitMessages(1)
    await mqttB.publishAsync('c/2', 'mqtt on B', { qos: 1 })
    await onB.waitMessages(2)
    await publishA('c/1', 'http on A again')
    await onA.waitMessages(3)
    await onB.waitMessages(3)
    const payloads = ['http on A', 'mqtt on B', 'http on A again']
    expect(onA.messages().map(m => m.payload)).toEqual(payloads)
    expect(onB.messages().map(m => m.payload)).toEqual(payloads)
    const ids = (r: SseReader): Array<string | undefined> => r.events.filter(e => e.event === 'message').map(e => e.id)
    expect(ids(onA)).toEqual(ids(onB))
    expect(await db.xlen('rtw:history:log')).toBe(before + 3)
  })

  it('recovers on node B from a position a stream got on node A', async () => {
    const first = await events(a, 'topic=r/1')
    await waitFor(() => first.lastEventId !== '', { what: 'the stream to start' })
    await publishA('r/1', 'seen')
    await first.waitMessages(1)
    const resume = first.lastEventId
    first.close()
    await mqttB.publishAsync('r/1', 'missed 1', { qos: 1 })
    await publishA('r/1', 'missed 2')
    const again = await events(b, 'topic=r/1', { 'last-event-id': resume })
    expect(again.headers.get('rtw-recovered')).toBe('true')
    await again.waitMessages(2)
    await mqttB.publishAsync('r/1', 'live', { qos: 1 })
    await again.waitMessages(3)
    expect(again.messages().map(m => m.payload)).toEqual(['missed 1', 'missed 2', 'live'])
  })
})
