// The MQTT<->AMQP mirror on amq.topic with a real RabbitMQ.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { rabbitAvailable, startRabbit, type TestRabbit } from '../helpers/rabbitmq.js'
import { openEvents } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'

const p = `t${randomBytes(3).toString('hex')}`

interface Got { topic: string, payload: string, qos: number, retain: boolean }

describe.skipIf(!rabbitAvailable())('MQTT <-> AMQP bridge on amq.topic', () => {
  let rabbit: TestRabbit
  let gw: TestGateway
  let conn: ChannelModel
  let ch: Channel

  /** An AMQP consumer of amq.topic bound with the given keys, recording what arrives. */
  const amqpConsumer = async (...keys: string[]): Promise<ConsumeMessage[]> => {
    const { queue } = await ch.assertQueue('', { exclusive: true })
    for (const k of keys) await ch.bindQueue(queue, 'amq.topic', k)
    const got: ConsumeMessage[] = []
    await ch.consume(queue, m => { if (m !== null) got.push(m) }, { noAck: true })
    return got
  }
  const mqttSubscriber = async (...filters: string[]): Promise<{ client: MqttClient, got: Got[] }> => {
    const client = await connectClient(gw.mqttUrl)
    const got: Got[] = []
    client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }))
    await subscribe(client, filters)
    return { client, got }
  }

  beforeAll(async () => {
    rabbit = await startRabbit()
    gw = await startGateway({ amqpUrl: rabbit.url, amqpReconnectMaxMs: 500 })
    await gw.app.amqp?.conn.waitUntilUp(30_000)
    conn = await amqp.connect(rabbit.url)
    ch = await conn.createChannel()
  })
  afterAll(async () => {
    await conn?.close()
    await gw?.close()
    await rabbit?.close()
  })

  it('mirrors MQTT publishes to amq.topic: "/" to ".", "+" to "*", "#" stays, dotted levels kept whole', async () => {
    const star = await amqpConsumer(`${p}.*.temp`)
    const hash = await amqpConsumer(`${p}.#`)
    const publisher = await connectClient(gw.mqttUrl)
    await publisher.publishAsync(`${p}/room1/temp`, '21.5', { qos: 1 })
    await publisher.publishAsync(`${p}/temp.c/temp`, '22', { qos: 0, retain: true })
    // "$" topics are the gateway's own and never leave MQTT; the sentinel after it proves it was not sent.
    await publisher.publishAsync(`$${p}/x`, 'private', { qos: 1 })
    await publisher.publishAsync(`${p}/sentinel`, 'end', { qos: 1 })
    await waitFor(() => hash.length >= 3, { what: 'three mirrored messages' })
    expect(hash.map(m => [m.fields.routingKey, m.content.toString()])).toEqual([
      [`${p}.room1.temp`, '21.5'],
      [`${p}.temp/c.temp`, '22'],
      [`${p}.sentinel`, 'end']
    ])
    await waitFor(() => star.length >= 2, { what: 'the "*" binding to match both' })
    expect(star.map(m => m.fields.routingKey)).toEqual([`${p}.room1.temp`, `${p}.temp/c.temp`])
    // QoS 1 becomes a persistent message, QoS 0 a transient one; QoS and retain travel as headers.
    const [first, second] = hash as [ConsumeMessage, ConsumeMessage]
    expect(first.properties.deliveryMode).toBe(2)
    expect(first.properties.headers).toMatchObject({ 'x-mqtt-qos': 1 })
    expect(second.properties.deliveryMode).not.toBe(2)
    expect(second.properties.headers).toMatchObject({ 'x-mqtt-qos': 0, 'x-mqtt-retain': true })
    await publisher.endAsync()
  })

  it('mirrors the HTTP publish API too', async () => {
    const got = await amqpConsumer(`${p}.http.#`)
    const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: `${p}/http/a`, payload: 'via http', qos: 1 }) })
    expect(res.status).toBeLessThan(300)
    await waitFor(() => got.length >= 1, { what: 'the HTTP publish on AMQP' })
    expect(got[0]?.content.toString()).toBe('via http')
  })

  it('delivers AMQP messages on amq.topic to GET /events streams too, in order, as SSE events', async () => {
    const stream = await openEvents(`${gw.httpUrl}/events?topic=${encodeURIComponent(`${p}/sse/#`)}`)
    try {
      expect(stream.status).toBe(200)
      await waitFor(() => stream.lastEventId !== '', { what: 'the stream to start' })
      ch.publish('amq.topic', `${p}.sse.one`, Buffer.from('first'), { persistent: true })
      ch.publish('amq.topic', `${p}.sse.two.deep`, Buffer.from('second'))
      await stream.waitMessages(2)
      expect(stream.messages().map(m => [m.topic, m.payload])).toEqual([[`${p}/sse/one`, 'first'], [`${p}/sse/two/deep`, 'second']])
    } finally {
      stream.close()
    }
  })

  it('delivers AMQP messages on amq.topic to MQTT subscribers of the mapped topic, with "+", "#" and dotted levels', async () => {
    const plus = await mqttSubscriber(`${p}/+/in`)
    const hash = await mqttSubscriber(`${p}/in2/#`)
    ch.publish('amq.topic', `${p}.room2.in`, Buffer.from('a'), { persistent: true })
    ch.publish('amq.topic', `${p}.temp/c.in`, Buffer.from('b'))
    ch.publish('amq.topic', `${p}.in2.deep.er`, Buffer.from('c'), { headers: { 'x-mqtt-qos': 0 } })
    await waitFor(() => plus.got.length >= 2 && hash.got.length >= 1, { what: 'AMQP messages on MQTT' })
    expect(plus.got.map(g => [g.topic, g.payload, g.qos])).toEqual([[`${p}/room2/in`, 'a', 1], [`${p}/temp.c/in`, 'b', 0]])
    expect(hash.got.map(g => [g.topic, g.payload, g.qos])).toEqual([[`${p}/in2/deep/er`, 'c', 0]])
    await plus.client.endAsync()
    await hash.client.endAsync()
  })

  it('retains an AMQP message that asks for it with x-mqtt-retain', async () => {
    ch.publish('amq.topic', `${p}.state`, Buffer.from('on'), { persistent: true, headers: { 'x-mqtt-retain': true } })
    await waitFor(async () => (await fetch(`${gw.httpUrl}/retained/${p}%2Fstate`)).status === 200, { what: 'the retained message' })
    const late = await mqttSubscriber(`${p}/state`)
    await waitFor(() => late.got.length >= 1, { what: 'the retained message for a late subscriber' })
    expect(late.got[0]).toMatchObject({ payload: 'on', retain: true })
    await late.client.endAsync()
  })

  it('never loops: one MQTT publish reaches AMQP once and MQTT subscribers once', async () => {
    const onAmqp = await amqpConsumer(`${p}.loop.#`)
    const onMqtt = await mqttSubscriber(`${p}/loop/#`)
    const publisher = await connectClient(gw.mqttUrl)
    await publisher.publishAsync(`${p}/loop/m`, 'once', { qos: 1 })
    await waitFor(() => onAmqp.length >= 1, { what: 'the mirrored message' })
    // Anything echoing back from AMQP would be queued ahead of this sentinel.
    ch.publish('amq.topic', `${p}.loop.sentinel`, Buffer.from('end'))
    await waitFor(() => onMqtt.got.some(g => g.payload === 'end'), { what: 'the sentinel on MQTT' })
    await waitFor(() => onAmqp.some(m => m.content.toString() === 'end'), { what: 'the sentinel on AMQP' })
    expect(onMqtt.got.map(g => g.payload)).toEqual(['once', 'end'])
    expect(onAmqp.map(m => m.content.toString())).toEqual(['once', 'end'])
    const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { amqp: { bridge: { inOwnEcho: number } } }
    expect(stats.amqp.bridge.inOwnEcho).toBeGreaterThan(0)
    await publisher.endAsync()
    await onMqtt.client.endAsync()
  })

  it('refuses AMQP messages for "$" topics or too large for MQTT, dead-lettering them', async () => {
    const before = (await ch.checkQueue('rtw.dead')).messageCount
    ch.publish('amq.topic', '$req.echo.x', Buffer.from('{}'))
    ch.publish('amq.topic', `${p}.big`, Buffer.alloc(gw.config.maxPacketSize + 1))
    await waitFor(async () => (await ch.checkQueue('rtw.dead')).messageCount >= before + 2, { what: 'two dead letters' })
    const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { amqp: { bridge: { rejected: Record<string, number> } } }
    expect(stats.amqp.bridge.rejected).toMatchObject({ 'bad-topic': 1, 'too-large': 1 })
  })
})
