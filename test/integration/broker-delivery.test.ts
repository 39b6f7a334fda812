// Deliveries the embedded broker must not lose, whatever the mix of QoS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, recordMessages, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'

describe('broker delivery', () => {
  let gw: TestGateway
  let sub: MqttClient
  let pub: MqttClient
  beforeAll(async () => {
    gw = await startGateway()
    sub = await connectClient(gw.mqttUrl)
    pub = await connectClient(gw.mqttUrl)
    await subscribe(sub, 'mix/#', 1)
  })
  afterAll(async () => {
    await sub.endAsync()
    await pub.endAsync()
    await gw.close()
  })

  it('a QoS 1 message followed at once by QoS 0 ones is still delivered (Aedes would drop it as a duplicate)', async () => {
    const seen = recordMessages(sub)
    for (let i = 0; i < 50; i++) {
      gw.app.broker.publish(`mix/q1/${i}`, Buffer.from('one'), 1, false, () => {})
      gw.app.broker.publish(`mix/q0/${i}`, Buffer.from('zero'), 0, false, () => {})
    }
    for (let i = 0; i < 50; i++) {
      pub.publish(`mix/c1/${i}`, 'one', { qos: 1 })
      pub.publish(`mix/c0/${i}`, 'zero', { qos: 0 })
    }
    await waitFor(() => seen.length >= 200, { what: `200 deliveries (have ${seen.length})`, timeoutMs: 10_000 })
    const topics = new Set(seen.map(m => m.topic))
    for (let i = 0; i < 50; i++) {
      for (const kind of ['q1', 'q0', 'c1', 'c0']) expect(topics.has(`mix/${kind}/${i}`), `mix/${kind}/${i}`).toBe(true)
    }
  })

  it('async results are read by handle only: no wildcard can watch everyone\'s', async () => {
    expect(await grantedQos(sub, ['$result/#', '$result/+', '$result', '$result/AbC_123'])).toEqual([128, 128, 128, 1])
  })

  it('delivers the gateway\'s QoS 0 requests to every matching online subscriber, over TCP and WebSocket', async () => {
    const tcp = await connectClient(gw.mqttUrl)
    const ws = await connectClient(gw.wsUrl)
    const other = await connectClient(gw.mqttUrl)
    try {
      await subscribe(tcp, ['$req/direct/#', '$req/direct/+'], 0)
      await subscribe(ws, '$req/+/x', 1)
      await subscribe(other, '$req/elsewhere/#', 0)
      const atTcp = recordMessages(tcp)
      const atWs = recordMessages(ws)
      const atOther = recordMessages(other)
      const done: Array<Error | null | undefined> = []
      for (let i = 0; i < 20; i++) gw.app.broker.publish('$req/direct/x', Buffer.from(String(i)), 0, false, err => done.push(err))
      // A copy per matching subscription, as Aedes delivers them [MQTT-3.3.5-1], in the order published.
      await waitFor(() => atTcp.length === 40 && atWs.length === 20, { what: `the deliveries (tcp ${atTcp.length}, ws ${atWs.length})` })
      expect(done).toEqual(Array(20).fill(null))
      expect(atWs.map(m => m.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
      for (const m of [...atTcp, ...atWs]) expect([m.topic, m.retain]).toEqual(['$req/direct/x', false])
      // Nothing reached the subscriber whose filter does not match: its own next message is its first.
      gw.app.broker.publish('$req/elsewhere/y', Buffer.from('marker'), 0, false, () => {})
      await waitFor(() => atOther.length === 1, { what: 'the marker' })
      expect(atOther.map(m => m.topic)).toEqual(['$req/elsewhere/y'])
    } finally {
      await tcp.endAsync()
      await ws.endAsync()
      await other.endAsync()
    }
  })

  it('asks the delivery stages first: a subscriber it refuses gets nothing, the others still do', async () => {
    const refused = await connectClient(gw.mqttUrl, { clientId: 'refused-sub' })
    const accepted = await connectClient(gw.mqttUrl, { clientId: 'accepted-sub' })
    const broker = gw.app.broker
    const stages = broker.pipeline.stages
    broker.use([...stages, { name: 'refuse-one', deliver: client => client.id !== 'refused-sub' }])
    try {
      await subscribe(refused, '$req/hooked/#', 0)
      await subscribe(accepted, '$req/hooked/#', 0)
      const atRefused = recordMessages(refused)
      const atAccepted = recordMessages(accepted)
      gw.app.broker.publish('$req/hooked/a', Buffer.from('1'), 0, false, () => {})
      await waitFor(() => atAccepted.length === 1, { what: 'the accepted delivery' })
      // The refused subscriber's next message proves nothing was queued for it before.
      broker.use(stages)
      gw.app.broker.publish('$req/hooked/b', Buffer.from('2'), 0, false, () => {})
      await waitFor(() => atRefused.length === 1, { what: 'the delivery after the hook lets it through' })
      expect(atRefused.map(m => m.payload.toString())).toEqual(['2'])
    } finally {
      broker.use(stages)
      await refused.endAsync()
      await accepted.endAsync()
    }
  })

  it('routed QoS 0 messages reach every subscriber each with its own payload and flags: RETAIN 1 only for the retained one a SUBSCRIBE brings [MQTT-3.3.1-8], [MQTT-3.3.1-9]', async () => {
    const subs = await Promise.all([connectClient(gw.mqttUrl), connectClient(gw.wsUrl), connectClient(gw.mqttUrl)])
    try {
      // Payloads of one message share a frame; messages back to back, same payload object or not, are each framed.
      const same = Buffer.from('same')
      gw.app.broker.publish('lane/kept', Buffer.from('kept'), 0, true, () => {})
      await waitFor(async () => (await gw.app.broker.readRetained('lane/kept')) !== null, { what: 'the retained message' })
      const seen = subs.map(recordMessages)
      for (const s of subs) await subscribe(s, 'lane/#', 0)
      await waitFor(() => seen.every(m => m.length === 1), { what: 'the retained message at every subscriber' })
      gw.app.broker.publish('lane/a', same, 0, false, () => {})
      gw.app.broker.publish('lane/a', same, 0, false, () => {})
      gw.app.broker.publish('lane/b', same, 0, false, () => {})
      const other = await connectClient(gw.mqttUrl)
      other.publish('lane/c', 'from a client', { qos: 0 })
      await other.endAsync()
      await waitFor(() => seen.every(m => m.length === 5), { what: `every delivery (have ${seen.map(m => m.length).join(', ')})` })
      for (const m of seen) {
        expect(m.map(x => [x.topic, x.payload.toString(), x.retain])).toEqual([
          ['lane/kept', 'kept', true],
          ['lane/a', 'same', false],
          ['lane/a', 'same', false],
          ['lane/b', 'same', false],
          ['lane/c', 'from a client', false]
        ])
      }
    } finally {
      gw.app.broker.publish('lane/kept', Buffer.alloc(0), 0, true, () => {})
      await Promise.all(subs.map(async s => s.endAsync()))
    }
  })

  it('a persistent session gets what was queued while it was away, in order, once; a clean session with its id gets none of it [MQTT-3.1.2-4], [MQTT-3.1.2-6]', async () => {
    const id = 'queue-owner'
    const first = await connectClient(gw.mqttUrl, { clientId: id, clean: false })
    await subscribe(first, 'queue/#', 1)
    await first.endAsync()
    for (let i = 0; i < 5; i++) gw.app.broker.publish(`queue/${i}`, Buffer.from(String(i)), 1, false, () => {})
    const back = await connectClient(gw.mqttUrl, { clientId: id, clean: false, resubscribe: false })
    const seen = recordMessages(back)
    await waitFor(() => seen.length >= 5, { what: `the queued messages (have ${seen.length})` })
    expect(seen.map(m => m.payload.toString())).toEqual(['0', '1', '2', '3', '4'])
    await back.endAsync()
    for (let i = 5; i < 8; i++) gw.app.broker.publish(`queue/${i}`, Buffer.from(String(i)), 1, false, () => {})
    const clean = await connectClient(gw.mqttUrl, { clientId: id, clean: true })
    const atClean = recordMessages(clean)
    // Subscribing to what was queued shows nothing of it arrives; a new message does.
    await subscribe(clean, 'queue/#', 1)
    gw.app.broker.publish('queue/new', Buffer.from('new'), 1, false, () => {})
    await waitFor(() => atClean.length >= 1, { what: 'the new message' })
    expect(atClean.map(m => m.payload.toString())).toEqual(['new'])
    await clean.endAsync()
  })

  it('QoS 1 and 2 deliveries arrive whole, with their flags: small and large payloads, a retained one with RETAIN 1', async () => {
    const sub = await connectClient(gw.mqttUrl)
    try {
      const big = Buffer.alloc(100_000, 0x62)
      gw.app.broker.publish('whole/kept', Buffer.from('kept'), 1, true, () => {})
      await waitFor(async () => (await gw.app.broker.readRetained('whole/kept')) !== null, { what: 'the retained message' })
      const seen = recordMessages(sub)
      await subscribe(sub, 'whole/#', 1)
      await waitFor(() => seen.length === 1, { what: 'the retained message' })
      const pub = await connectClient(gw.mqttUrl)
      pub.publish('whole/small', 'ünï small', { qos: 1 })
      pub.publish('whole/big', big, { qos: 1 })
      pub.publish('whole/two', 'qos 2 becomes the granted 1', { qos: 2 })
      await waitFor(() => seen.length === 4, { what: `the deliveries (have ${seen.length})` })
      await pub.endAsync()
      // A QoS 2 PUBLISH is routed once stored, so it may overtake the QoS 1 ones: compared by topic.
      const byTopic = seen.map(m => [m.topic, m.payload.length > 50 ? m.payload.equals(big) : m.payload.toString(), m.retain])
      expect(byTopic.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
        ['whole/big', true, false],
        ['whole/kept', 'kept', true],
        ['whole/small', 'ünï small', false],
        ['whole/two', 'qos 2 becomes the granted 1', false]
      ])
    } finally {
      gw.app.broker.publish('whole/kept', Buffer.alloc(0), 1, true, () => {})
      await sub.endAsync()
    }
  })
})
