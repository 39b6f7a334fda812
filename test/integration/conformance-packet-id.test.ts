// [MQTT-2.3.1-1] SUBSCRIBE and UNSUBSCRIBE packets MUST carry a non-zero Packet
// Identifier. mqtt-packet parses 0 and Aedes would acknowledge it, so the
// packet guard closes the connection first: over TCP and WebSocket alike,
// without a SUBACK/UNSUBACK, logged once through the broker's `refused` hook.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectPacket, generate, rawConnect, subscribePacket } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

let gw: TestGateway
let refusals: string[]

beforeAll(async () => {
  gw = await startGateway({ connectRate: 10_000 })
  // Every refusal goes through broker.refused when it happens, so wrapping it here sees the guard's reports.
  const broker = gw.app.broker
  const inner = broker.refused
  broker.refused = (client, what) => {
    refusals.push(what)
    inner(client, what)
  }
})
afterAll(async () => { await gw?.close() })
beforeEach(() => { refusals = [] })

const unsubscribePacket = (filters: string[], messageId = 1): Buffer =>
  generate({ cmd: 'unsubscribe', messageId, unsubscriptions: filters })

describe('Packet Identifier 0 closes the connection [MQTT-2.3.1-1]', () => {
  describe('over TCP', () => {
    it('a SUBSCRIBE with id 0: closed, no SUBACK, refused once', async () => {
      const c = await rawConnect(gw.mqttPort, 'sub-id-zero')
      c.send(subscribePacket(['zero/a'], 0))
      expect(await c.closedWithin()).toBe(true)
      expect(c.packets.map(p => p.cmd)).toEqual(['connack'])
      expect(refusals).toEqual([expect.stringMatching(/SUBSCRIBE with Packet Identifier 0 \[MQTT-2\.3\.1-1\]; disconnected$/)])
      expect(refusals[0]).not.toMatch(/UNSUBSCRIBE/)
    })

    it('an UNSUBSCRIBE with id 0: closed, no UNSUBACK, refused once', async () => {
      const c = await rawConnect(gw.mqttPort, 'unsub-id-zero')
      c.send(unsubscribePacket(['zero/a'], 0))
      expect(await c.closedWithin()).toBe(true)
      expect(c.packets.map(p => p.cmd)).toEqual(['connack'])
      expect(refusals).toEqual([expect.stringMatching(/UNSUBSCRIBE with Packet Identifier 0 \[MQTT-2\.3\.1-1\]; disconnected$/)])
    })

    it('the id split across two writes is still read', async () => {
      const c = await rawConnect(gw.mqttPort, 'split-id-zero')
      const p = subscribePacket(['zero/split'], 0)
      // Fixed header and the id's high byte, then the rest once the gateway's socket has read them
      // (Aedes pulls them on the 'readable' that follows in the same turn, before this poll sees the count).
      const clients = (gw.app.broker.aedes as unknown as { clients: Record<string, { conn: { bytesRead?: number } } | undefined> }).clients
      const server = clients['split-id-zero']?.conn
      expect(server?.bytesRead).toBeTypeOf('number')
      const before = server?.bytesRead ?? 0
      c.send(p.subarray(0, 3))
      await waitFor(() => server?.bytesRead === before + 3, { what: 'the first 3 bytes at the gateway' })
      c.send(p.subarray(3))
      expect(await c.closedWithin()).toBe(true)
      expect(c.packets.map(p => p.cmd)).toEqual(['connack'])
    })

    it('while SUBSCRIBE and UNSUBSCRIBE with a non-zero id, on another connection, are answered', async () => {
      const c = await rawConnect(gw.mqttPort, 'id-ok')
      c.send(subscribePacket(['ok/a'], 0x100))
      expect(await c.next('suback')).toMatchObject({ messageId: 0x100, granted: [0] })
      c.send(unsubscribePacket(['ok/a'], 1))
      expect(await c.next('unsuback')).toMatchObject({ messageId: 1 })
      expect(c.closed).toBe(false)
      expect(refusals).toEqual([])
      c.destroy()
    })
  })

  describe('over WebSocket', () => {
    /** A raw MQTT-over-WebSocket connection past CONNACK. */
    async function wsConnect (clientId: string): Promise<{ ws: WebSocket, packets: Packet[], closed: () => boolean }> {
      const ws = new WebSocket(gw.wsUrl, 'mqtt')
      const packets: Packet[] = []
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      parser.on('packet', p => packets.push(p))
      parser.on('error', () => {})
      ws.on('message', (d: Buffer) => parser.parse(d))
      ws.on('error', () => {})
      let closed = false
      ws.once('close', () => { closed = true })
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
      ws.send(connectPacket(clientId))
      await waitFor(() => packets.some(p => p.cmd === 'connack'), { what: 'CONNACK over WebSocket' })
      return { ws, packets, closed: () => closed }
    }

    it.each([
      ['SUBSCRIBE', subscribePacket(['zero/ws'], 0)],
      ['UNSUBSCRIBE', unsubscribePacket(['zero/ws'], 0)]
    ])('a %s with id 0: closed, nothing answered', async (name, packet) => {
      const c = await wsConnect(`ws-${name}-zero`)
      c.ws.send(packet)
      await waitFor(c.closed, { timeoutMs: 5_000, what: 'the gateway closing the WebSocket' })
      expect(c.packets.map(p => p.cmd)).toEqual(['connack'])
      expect(refusals).toEqual([expect.stringContaining(`: ${name} with Packet Identifier 0 [MQTT-2.3.1-1]`)])
    })

    it('a SUBSCRIBE with a non-zero id is answered', async () => {
      const c = await wsConnect('ws-id-ok')
      c.ws.send(subscribePacket(['ok/ws'], 9))
      await waitFor(() => c.packets.find(p => p.cmd === 'suback'), { what: 'SUBACK over WebSocket' })
      expect(c.packets.find(p => p.cmd === 'suback')).toMatchObject({ messageId: 9, granted: [0] })
      expect(c.closed()).toBe(false)
      c.ws.terminate()
    })
  })
})
