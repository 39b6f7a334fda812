// Limits slow a client down; they never drop its data (README "Limits"). Real
// sockets: a raw TCP publisher writing as fast as the kernel takes it, MQTT.js
// subscribers and publishers, and a burst of raw connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { connectPacket, generate, rawConnect, type RawClient } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

/** `n` QoS 0 PUBLISH packets with 64-byte payloads numbered in order, as one buffer. */
function publishes (topic: string, n: number): Buffer {
  const out: Buffer[] = []
  for (let i = 0; i < n; i++) out.push(generate({ cmd: 'publish', topic, payload: String(i).padStart(64, '0'), qos: 0, retain: false, dup: false }))
  return Buffer.concat(out)
}

describe('with the default limits, one client flat out is never throttled', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('a subscriber receives all of 100,000 QoS 0 messages published back to back, in order', async () => {
    const N = 100_000
    const sub = await connectClient(gw.mqttUrl, { clientId: 'bp-sub' })
    await subscribe(sub, 'bp/all', 0)
    let count = 0
    let inOrder = true
    sub.on('message', (_t, payload) => {
      if (Number(payload.toString()) !== count) inOrder = false
      count++
    })
    const pub = await rawConnect(gw.mqttPort, 'bp-pub')
    const before = { ...gw.app.limits.counters }
    const start = Date.now()
    pub.send(publishes('bp/all', N))
    await waitFor(() => count === N, { timeoutMs: 60_000, intervalMs: 50, what: `all ${N} messages at the subscriber (${count} so far)` })
    const seconds = (Date.now() - start) / 1000
    expect(inOrder).toBe(true)
    expect(pub.closed).toBe(false)
    // Nothing waited for publishRate, nothing was dropped anywhere.
    expect(gw.app.limits.counters.publishesDelayed).toBe(before.publishesDelayed)
    expect(gw.app.limits.counters.slowConsumers).toBe(before.slowConsumers)
    console.log(`100,000 QoS 0 messages through the gateway in ${seconds.toFixed(2)} s (${Math.round(N / seconds)}/s)`)
    pub.destroy()
    await sub.endAsync()
  })
})

describe('with RTW_PUBLISH_RATE=1000, a faster publisher is slowed down, not dropped', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ publishRate: 1000 }) })
  afterAll(async () => { await gw?.close() })

  it('3,000 QoS 1 messages written back to back all arrive, each acknowledged, and take at least about 2 s', async () => {
    const N = 3000
    const sub = await connectClient(gw.mqttUrl, { clientId: 'bp-rate-sub' })
    await subscribe(sub, 'bp/rate', 1)
    const seen = new Set<string>()
    sub.on('message', (_t, payload) => seen.add(payload.toString()))
    // A raw publisher writes all 3,000 at once: far faster than 1,000 per second, whatever the machine's load.
    const pub = await rawConnect(gw.mqttPort, 'bp-rate-pub')
    const packets = Array.from({ length: N }, (_, i) => generate({ cmd: 'publish', topic: 'bp/rate', payload: String(i), qos: 1, messageId: i + 1, retain: false, dup: false }))
    const start = Date.now()
    pub.send(Buffer.concat(packets))
    await waitFor(() => seen.size === N, { timeoutMs: 30_000, what: `all ${N} messages (${seen.size} so far)` })
    const elapsed = Date.now() - start
    // A burst of 1,000, then 1,000 per second: the last 2,000 need 2 s.
    expect(elapsed).toBeGreaterThanOrEqual(1_900)
    // Some had to wait: the time above was the rate's, not only a slow machine's.
    expect(gw.app.limits.counters.publishesDelayed).toBeGreaterThan(0)
    await waitFor(() => pub.packets.filter(p => p.cmd === 'puback').length === N, { what: 'a PUBACK for each' })
    expect(pub.closed).toBe(false)
    pub.destroy()
    await sub.endAsync()
  })
})

describe('with RTW_CONNECT_RATE=50, a burst of connections waits for its turn', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 50 }) })
  afterAll(async () => { await gw?.close() })

  it('500 connections from one address all connect in the end', async () => {
    const N = 500
    const start = Date.now()
    const clients: RawClient[] = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const c = await rawConnect(gw.mqttPort)
      c.send(connectPacket(`bp-conn-${i}`))
      return c
    }))
    try {
      await waitFor(() => clients.every(c => c.packets.some(p => p.cmd === 'connack')), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `every CONNACK (${clients.filter(c => c.packets.some(p => p.cmd === 'connack')).length} so far)`
      })
      const elapsed = Date.now() - start
      expect(clients.map(c => (c.packets.find(p => p.cmd === 'connack') as { returnCode?: number }).returnCode)).toEqual(Array.from({ length: N }, () => 0))
      expect(clients.some(c => c.closed)).toBe(false)
      // A burst of 50, then 50 per second: the last 450 need 9 s.
      expect(elapsed).toBeGreaterThanOrEqual(8_000)
      expect(gw.app.limits.counters.connectionsDelayed).toBeGreaterThan(N / 2)
      expect(gw.app.limits.counters.connectionsRefused).toBe(0)
    } finally {
      for (const c of clients) c.destroy()
    }
  })
})
