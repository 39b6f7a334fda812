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
})
