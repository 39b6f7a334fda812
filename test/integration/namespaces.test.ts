// Walks the namespace table (core/namespaces.ts, [P-12.7]) over real MQTT and
// HTTP: for each row, what a client may publish and subscribe over MQTT, and
// what POST /publish and GET /retained accept, must be what the row says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { NAMESPACES, type Namespace } from '../../core/namespaces.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, grantedQos, subscribe } from '../helpers/mqtt.js'
import { waitFor } from '../helpers/wait.js'

const OWNER = 'ns-owner'

/** A topic and a filter in each namespace, and a filter there that must be refused whatever the row says. */
const SAMPLES: Record<string, { topic: string, filter: string, refused?: string }> = {
  $req: { topic: '$req/nsecho/x', filter: '$req/nsecho/#' },
  $res: { topic: '$res/nsecho/$rid/1', filter: '$res/nsecho/#' },
  $inbox: { topic: `$inbox/${OWNER}/r`, filter: `$inbox/${OWNER}/#`, refused: '$inbox/someone-else/#' },
  $result: { topic: '$result/0123456789abcdef', filter: '$result/0123456789abcdef', refused: '$result/+' },
  $history: { topic: '$history/ns/x', filter: '$history/ns/#', refused: '$history' },
  $SYS: { topic: '$SYS/ns/x', filter: '$SYS/ns/#' },
  $: { topic: '$other/x', filter: '$other/#' },
  '': { topic: 'ns/plain', filter: 'ns/#' }
}

const rows = NAMESPACES.map(ns => [ns.name === '' ? 'ordinary topics' : ns.name === '$' ? 'other $ topics' : ns.name, ns] as const)

describe('the namespace table, walked over MQTT and HTTP [P-12.7]', () => {
  let gw: TestGateway
  let responder: MqttClient
  /** Topics the broker routed, as the pipeline's observers see them. */
  const routed: string[] = []

  beforeAll(async () => {
    gw = await startGateway()
    gw.app.broker.use([...gw.app.broker.pipeline.stages, { name: 'record', published: packet => { routed.push(packet.topic) } }])
    // Requests need a responder, or the bridge answers 404 instead of routing them.
    responder = await connectClient(gw.mqttUrl, { clientId: 'ns-responder' })
    await subscribe(responder, '$req/nsecho/#', 0)
  })
  afterAll(async () => {
    await responder?.endAsync()
    await gw?.close()
  })

  it('has a sample for every row', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(NAMESPACES.map(n => n.name).sort())
  })

  it.each(rows)('%s: MQTT publish is as the table says', async (_name, ns: Namespace) => {
    const { topic } = SAMPLES[ns.name] as { topic: string }
    const client = await connectClient(gw.mqttUrl, { clientId: OWNER })
    let closed = false
    client.on('close', () => { closed = true })
    try {
      const payload = ns.mqttPublish === 'caller' ? JSON.stringify({ id: 'ns1', replyTo: `$inbox/${OWNER}/r` }) : 'x'
      client.publish(topic, payload, { qos: 0 })
      if (ns.mqttPublish === 'broker') {
        await waitFor(() => closed, { what: 'the connection closed by the broker' })
        expect(routed).not.toContain(topic)
        return
      }
      // A marker after it, on the same connection: once it is routed, so is (or never will be) the
      // sample, as observers see a client's publishes in the order it sent them (test/integration/publish-order.test.ts).
      const marker = `ns/marker/${ns.name.replace('$', 'dollar-') || 'plain'}`
      client.publish(marker, 'm', { qos: 0 })
      await waitFor(() => routed.includes(marker), { what: 'the marker routed' })
      const routes = ns.mqttPublish === 'granted' || ns.mqttPublish === 'caller'
      expect(routed.includes(topic), JSON.stringify(routed.slice(-6))).toBe(routes)
      expect(closed).toBe(false)
    } finally {
      client.end(true)
    }
  })

  it.each(rows)('%s: MQTT subscribe is as the table says', async (_name, ns: Namespace) => {
    const sample = SAMPLES[ns.name] as { filter: string, refused?: string }
    const client = await connectClient(gw.mqttUrl, { clientId: OWNER })
    try {
      const [granted] = await grantedQos(client, sample.filter, 0)
      expect(granted === 128).toBe(ns.subscribe === 'nobody')
      if (sample.refused !== undefined) expect(await grantedQos(client, sample.refused, 0)).toEqual([128])
    } finally {
      await client.endAsync()
    }
  })

  it.each(rows)('%s: POST /publish is as the table says', async (_name, ns: Namespace) => {
    const { topic } = SAMPLES[ns.name] as { topic: string }
    const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload: 'x' }) })
    const body = await res.json() as { error?: { code: string } }
    if (ns.httpPublish) expect([200, 202]).toContain(res.status)
    else expect([res.status, body.error?.code]).toEqual([400, 'RTW_BAD_TOPIC'])
  })

  it.each(rows)('%s: GET /retained is as the table says', async (_name, ns: Namespace) => {
    const { topic } = SAMPLES[ns.name] as { topic: string }
    const res = await fetch(`${gw.httpUrl}/retained/${topic.split('/').map(encodeURIComponent).join('/')}`)
    const body = await res.json() as { error?: { code: string } }
    expect([res.status, body.error?.code]).toEqual(ns.httpRead ? [404, 'RTW_NO_RETAINED'] : [400, 'RTW_BAD_TOPIC'])
  })
})
