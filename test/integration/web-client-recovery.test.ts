// The web client's recovering subscriptions over MQTT-over-WebSocket [P-16.3]:
// messages published while its connection is down arrive after it comes back,
// every one exactly once and in order; and a gap too long for the history is
// reported as recovered: false.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { Message, RealtimeClient, RecoveredInfo } from '../../web-client/src/index.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient } from '../helpers/mqtt.js'
import { nextEvent, nodeClient } from '../helpers/web-client.js'
import { waitFor } from '../helpers/wait.js'

function dropFromGateway (gw: TestGateway, client: RealtimeClient): void {
  const aedes = gw.app.broker.aedes as unknown as { clients: Record<string, { close: () => void }> }
  aedes.clients[client.clientId]?.close()
}

describe('web client: subscribe(…, { recover: true })', () => {
  let gw: TestGateway
  let pub: MqttClient
  const clients: RealtimeClient[] = []
  beforeAll(async () => {
    gw = await startGateway({ historySize: 50 })
    pub = await connectClient(gw.mqttUrl)
  })
  afterEach(() => { for (const c of clients.splice(0)) c.close() })
  afterAll(async () => {
    await pub.endAsync()
    await gw.close()
  })

  it('delivers what was published during a drop, then the live messages: each once, in order', async () => {
    const client = nodeClient(gw.wsUrl, { minReconnectDelay: 400, maxReconnectDelay: 400 })
    clients.push(client)
    const seen: Message[] = []
    const recovered: RecoveredInfo[] = []
    client.on('recovered', info => recovered.push(info))
    const sub = client.subscribe('feed/#', m => seen.push(m), { recover: true })
    await sub.ready
    let n = 0
    const publish = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) await pub.publishAsync(`feed/${n % 3}`, String(++n), { qos: 1 })
    }
    await publish(20)
    await waitFor(() => seen.length === 20, { what: 'the first 20' })
    expect(seen[0]?.position).toMatch(/^[0-9a-z]+-\d+$/)

    const disconnected = nextEvent(client, 'disconnected')
    const reconnected = nextEvent(client, 'connected')
    dropFromGateway(gw, client)
    await disconnected
    await publish(15) // in the gap
    expect(client.state).not.toBe('connected')
    await reconnected
    await publish(15) // while the recovery runs, and after
    await waitFor(() => seen.length >= 50, { what: 'all 50 messages' })
    await waitFor(() => recovered.length === 1, { what: 'the recovered event' })
    expect(recovered).toEqual([{ filter: 'feed/#', recovered: true }])
    expect(seen.map(m => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => String(i + 1)))
  })

  it('reports recovered: false when the gap was longer than the history keeps', async () => {
    const small = await startGateway({ historySize: 3 })
    const p = await connectClient(small.mqttUrl)
    try {
      const client = nodeClient(small.wsUrl, { minReconnectDelay: 400, maxReconnectDelay: 400 })
      clients.push(client)
      const seen: Message[] = []
      await client.subscribe('gap/1', m => seen.push(m), { recover: true }).ready
      await p.publishAsync('gap/1', 'before', { qos: 1 })
      await waitFor(() => seen.length === 1, { what: 'the first message' })
      const disconnected = nextEvent(client, 'disconnected')
      const result = nextEvent(client, 'recovered')
      dropFromGateway(small, client)
      await disconnected
      for (let i = 0; i < 6; i++) await p.publishAsync('gap/1', `lost ${i}`, { qos: 1 })
      expect((await result)[0]).toEqual({ filter: 'gap/1', recovered: false })
      await p.publishAsync('gap/1', 'after', { qos: 1 })
      await waitFor(() => seen.length === 2, { what: 'the live message' })
      expect(seen.map(m => m.text)).toEqual(['before', 'after'])
    } finally {
      await p.endAsync()
      await small.close()
    }
  })
})
