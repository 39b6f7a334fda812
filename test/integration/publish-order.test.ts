// [MQTT-4.6.0-6] A client's messages reach subscribers, and the pipeline's
// observers (history, SSE), in the order it sent them. Sent in one write, so
// the gateway handles them in one read: a retained message is stored before
// it is routed, and a plain one sent after it must still not overtake it
// (broker/ordered.ts); a message with a subscriber must not be observed after
// a later one without (broker/internals.ts afterEachRouted).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { generate, rawConnect, type RawClient } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

describe('one client\'s messages, sent in one write, keep their order', () => {
  let gw: TestGateway
  let sub: MqttClient
  let pub: RawClient
  const got: Array<{ topic: string, payload: string, qos: number }> = []
  const observed: string[] = []

  beforeAll(async () => {
    gw = await startGateway()
    gw.app.broker.use([...gw.app.broker.pipeline.stages, { name: 'record', published: packet => { if (!packet.topic.startsWith('$')) observed.push(`${packet.topic} ${String(packet.payload)}`) } }])
    sub = await connectClient(gw.mqttUrl, { clientId: 'order-sub' })
    sub.on('message', (topic, payload, packet) => { got.push({ topic, payload: payload.toString(), qos: packet.qos }) })
    await subscribe(sub, 'order/#', 1)
    pub = await rawConnect(gw.mqttPort, 'order-pub')
  })
  afterAll(async () => {
    pub?.destroy()
    await sub?.endAsync()
    await gw?.close()
  })

  let nextId = 1
  const publish = (topic: string, payload: string, qos: 0 | 1, retain: boolean): Buffer =>
    generate({ cmd: 'publish', topic, payload, qos, retain, dup: false, ...(qos === 1 ? { messageId: nextId++ } : {}) })

  it.each([0, 1] as const)('retained and plain messages to one topic, QoS %i: delivered in the order sent', async qos => {
    const topic = `order/mixed/${qos}`
    const sent = ['A', 'B', 'C', 'D', 'E', 'F']
    got.length = 0
    // A retained, B plain, C retained, D plain, E plain, F retained.
    pub.send(Buffer.concat(sent.map((p, i) => publish(topic, p, qos, i === 0 || i === 2 || i === 5))))
    await waitFor(() => got.filter(m => m.topic === topic).length === sent.length, { what: 'every message delivered' })
    expect(got.filter(m => m.topic === topic).map(m => m.payload)).toEqual(sent)
    // The last retained one is what a new subscriber gets.
    const late = await connectClient(gw.mqttUrl, { clientId: `order-late-${qos}` })
    try {
      const retained: string[] = []
      late.on('message', (_t, p) => retained.push(p.toString()))
      await subscribe(late, topic, 0)
      await waitFor(() => retained.length > 0, { what: 'the retained message' })
      expect(retained).toEqual(['F'])
    } finally {
      await late.endAsync()
    }
  })

  it('a message with a subscriber is observed before a later one without, and retained ones keep their place', async () => {
    observed.length = 0
    const seq = [
      ['order/watched/1', '1', false],
      ['other/unwatched', '2', false],
      ['order/watched/2', '3', true],
      ['other/unwatched', '4', false],
      ['other/unwatched', '5', true],
      ['order/watched/3', '6', false]
    ] as const
    pub.send(Buffer.concat(seq.map(([t, p, r]) => publish(t, p, 0, r))))
    await waitFor(() => observed.length >= seq.length, { what: 'every message observed' })
    expect(observed).toEqual(seq.map(([t, p]) => `${t} ${p}`))
  })
})
