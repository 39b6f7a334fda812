// RabbitMQ in a cluster (docs/CLUSTER.md §5): two gateway nodes on one Redis
// and one RabbitMQ mirror each message exactly once, in both directions, not
// once per node; an async result of a queued service made on one node reads
// back on the other, and an idempotent call repeated on the other node replays.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import type { TestProcess } from '../helpers/processes.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { rabbitAvailable, startEchoWorker, startRabbit, type TestRabbit } from '../helpers/rabbitmq.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

const p = `c${randomBytes(3).toString('hex')}`

describe.skipIf(!rabbitAvailable() || !redisAvailable())('the AMQP bridge of a two-node cluster', () => {
  let rabbit: TestRabbit
  let redis: TestRedis
  let a: TestGateway
  let b: TestGateway
  let conn: ChannelModel
  let ch: Channel
  let worker: TestProcess
  const clients: MqttClient[] = []

  const mqttSubscriber = async (gw: TestGateway): Promise<string[]> => {
    const client = await connectClient(gw.mqttUrl)
    clients.push(client)
    const got: string[] = []
    client.on('message', (_topic, payload) => got.push(payload.toString()))
    await subscribe(client, `${p}/#`, 1)
    return got
  }

  beforeAll(async () => {
    ;[rabbit, redis] = await Promise.all([startRabbit(), startRedis()])
    const config = { amqpUrl: rabbit.url, redisUrl: redis.url, amqpReconnectMaxMs: 500, queuedServices: `${p}q` }
    a = await startGateway(config)
    b = await startGateway(config)
    worker = await startEchoWorker(rabbit.url, { services: [`${p}q`] })
    await a.app.amqp?.conn.waitUntilUp(30_000)
    await b.app.amqp?.conn.waitUntilUp(30_000)
    conn = await amqp.connect(rabbit.url)
    ch = await conn.createChannel()
  }, 90_000)
  afterAll(async () => {
    for (const c of clients) c.end(true)
    await worker?.killGroup()
    await conn?.close()
    await a?.close()
    await b?.close()
    await rabbit?.close()
    await redis?.close()
  })

  it('mirrors an MQTT publish on either node to amq.topic once', async () => {
    const { queue } = await ch.assertQueue('', { exclusive: true })
    await ch.bindQueue(queue, 'amq.topic', `${p}.#`)
    const got: ConsumeMessage[] = []
    await ch.consume(queue, m => { if (m !== null) got.push(m) }, { noAck: true })
    // Subscribers on both nodes: each node then routes the message to local clients, and must still mirror it only where it was published.
    await mqttSubscriber(a)
    await mqttSubscriber(b)
    const onA = await connectClient(a.mqttUrl)
    const onB = await connectClient(b.mqttUrl)
    clients.push(onA, onB)
    await onA.publishAsync(`${p}/out/1`, 'from A', { qos: 1 })
    await onB.publishAsync(`${p}/out/2`, 'from B', { qos: 1 })
    await onA.publishAsync(`${p}/out/end`, 'end', { qos: 1 })
    await waitFor(() => got.some(m => m.content.toString() === 'end'), { what: 'the last mirrored message' })
    // Once 'end' (published after the others on the same path) is in, any second copy of them would be too.
    await waitFor(() => got.filter(m => m.content.toString() !== 'end').length >= 2, { what: 'both messages' })
    expect(got.map(m => m.content.toString()).sort()).toEqual(['end', 'from A', 'from B'])
  })

  it('delivers an AMQP message to MQTT subscribers on every node once', async () => {
    const onA = await mqttSubscriber(a)
    const onB = await mqttSubscriber(b)
    // The shared bridge-in queue has a consumer from each node before anything is sent.
    await waitFor(async () => (await ch.checkQueue(`rtw.mqtt.cluster.${a.app.cluster?.clusterId ?? '?'}`)).consumerCount === 2,
      { what: 'both nodes consuming the shared bridge queue' })
    for (let i = 0; i < 10; i++) ch.publish('amq.topic', `${p}.in.${i}`, Buffer.from(`in${i}`))
    ch.publish('amq.topic', `${p}.in.end`, Buffer.from('in-end'))
    await waitFor(() => onA.includes('in-end') && onB.includes('in-end'), { what: 'the last message on both nodes' })
    await waitFor(() => onA.length >= 11 && onB.length >= 11, { what: 'all ten on both nodes' })
    const expected = [...Array.from({ length: 10 }, (_, i) => `in${i}`), 'in-end'].sort()
    expect([...onA].sort()).toEqual(expected)
    expect([...onB].sort()).toEqual(expected)
  })

  it('reads an async result at /requests/<handle> on every node, whichever node took the call', async () => {
    const res = await fetch(`${a.httpUrl}/api/${p}q/job`, { method: 'POST', body: 'async across nodes', headers: { prefer: 'respond-async' } })
    expect(res.status).toBe(202)
    const accepted = await res.json() as { id: string, statusUrl: string }
    const done = await waitFor(async () => {
      const r = await fetch(b.httpUrl + accepted.statusUrl)
      return r.headers.get('x-rtw-request-state') === 'done' ? r : null
    }, { what: 'the result on the other node' })
    expect(done.status).toBe(200)
    expect(await done.text()).toBe('async across nodes')
    const onA = await fetch(a.httpUrl + accepted.statusUrl)
    expect([onA.status, await onA.text()]).toEqual([200, 'async across nodes'])
  })

  it('replays an idempotent call repeated on the other node, and runs it once', async () => {
    const key = `k-${randomBytes(8).toString('hex')}`
    const first = await fetch(`${a.httpUrl}/api/${p}q/pay`, { method: 'POST', body: 'once', headers: { 'idempotency-key': key } })
    expect([first.status, await first.text()]).toEqual([200, 'once'])
    const again = await fetch(`${b.httpUrl}/api/${p}q/pay`, { method: 'POST', body: 'once', headers: { 'idempotency-key': key } })
    expect([again.status, again.headers.get('idempotent-replayed'), await again.text()]).toEqual([200, 'true', 'once'])
    expect(again.headers.get('x-request-id')).toBe(first.headers.get('x-request-id'))
  })
})
