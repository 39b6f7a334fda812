// Overlapping subscriptions, with raw packets: a message that matches several
// of one client's filters is delivered respecting the maximum QoS of all of
// them [MQTT-3.3.5-1], and no copy exceeds the QoS of its subscription, nor
// the published QoS [MQTT-3.8.4-6].
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Packet } from 'mqtt-packet'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { generate, rawConnect, type RawClient } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

type Qos = 0 | 1 | 2
type Publish = Packet & { cmd: 'publish', topic: string, qos: Qos, messageId?: number, payload: Buffer }

/** A raw subscriber that completes every QoS 1 and 2 flow it is sent, as a conforming client must. */
async function subscriber (gw: TestGateway, clientId: string, subs: Array<[string, Qos]>): Promise<RawClient> {
  const c = await rawConnect(gw.mqttPort, clientId)
  c.socket.on('data', () => {
    for (const p of c.packets) {
      const q = p as Publish & { answered?: boolean }
      if (q.cmd !== 'publish' || q.answered === true) continue
      q.answered = true
      if (q.qos === 1) c.send(generate({ cmd: 'puback', messageId: q.messageId }))
      if (q.qos === 2) c.send(generate({ cmd: 'pubrec', messageId: q.messageId }))
    }
    for (const p of c.packets) {
      const r = p as Packet & { cmd: string, messageId?: number, answered?: boolean }
      if (r.cmd !== 'pubrel' || r.answered === true) continue
      r.answered = true
      c.send(generate({ cmd: 'pubcomp', messageId: r.messageId }))
    }
  })
  c.send(generate({ cmd: 'subscribe', messageId: 1, subscriptions: subs.map(([topic, qos]) => ({ topic, qos })) }))
  const suback = await c.next('suback') as { granted: number[] }
  expect(suback.granted).toEqual(subs.map(([, qos]) => qos))
  return c
}

let nextId = 1

/** Publishes from a raw client and completes the flow, so the message is surely routed. */
async function publishFrom (c: RawClient, topic: string, qos: Qos, payload: string): Promise<void> {
  // A fresh Packet Identifier, so the acknowledgements waited for are this message's.
  const messageId = qos === 0 ? undefined : nextId++
  c.send(generate({ cmd: 'publish', topic, payload, qos, messageId, retain: false, dup: false }))
  if (qos === 1) await waitFor(() => c.packets.find(p => p.cmd === 'puback' && p.messageId === messageId), { what: 'PUBACK' })
  if (qos === 2) {
    await waitFor(() => c.packets.find(p => p.cmd === 'pubrec' && p.messageId === messageId), { what: 'PUBREC' })
    c.send(generate({ cmd: 'pubrel', messageId }))
    await waitFor(() => c.packets.find(p => p.cmd === 'pubcomp' && p.messageId === messageId), { what: 'PUBCOMP' })
  }
}

const received = (c: RawClient, payload: string): Publish[] =>
  c.packets.filter((p): p is Publish => p.cmd === 'publish' && (p as Publish).payload.toString() === payload)

describe('overlapping subscriptions [MQTT-3.3.5-1], [MQTT-3.8.4-6]', () => {
  let gw: TestGateway
  let pub: RawClient
  beforeAll(async () => {
    gw = await startGateway()
    pub = await rawConnect(gw.mqttPort, 'overlap-pub')
  })
  afterAll(async () => {
    pub?.destroy()
    await gw?.close()
  })

  // [published QoS, the two subscriptions' QoS]
  const cases: Array<[Qos, Qos, Qos]> = [[2, 2, 1], [2, 1, 2], [1, 1, 0], [1, 0, 1], [2, 1, 0], [1, 2, 2], [0, 2, 1]]
  it.each(cases)('QoS %i published, subscriptions at QoS %i and %i: one copy at the highest allowed, none above its subscription', async (published, qa, qb) => {
    const id = `${published}${qa}${qb}`
    const sub = await subscriber(gw, `overlap-sub-${id}`, [[`ov${id}/#`, qa], [`ov${id}/+`, qb]])
    try {
      await publishFrom(pub, `ov${id}/C`, published, `m${id}`)
      // A marker published after it at QoS 0 on one subscription only: once it is in, every copy of the first is too.
      await publishFrom(pub, `ov${id}/C/marker`, 0, `marker${id}`)
      await waitFor(() => received(sub, `marker${id}`).length === 1, { what: 'the marker' })
      const copies = received(sub, `m${id}`)
      expect(copies.length).toBeGreaterThanOrEqual(1)
      expect(copies.length).toBeLessThanOrEqual(2)
      const allowed = [Math.min(published, qa), Math.min(published, qb)].sort()
      // Whatever the number of copies, the highest QoS any subscription allows is delivered once...
      expect(Math.max(...copies.map(c => c.qos))).toBe(Math.max(...allowed))
      // ...and a second copy, if sent, is the other subscription's, at its own QoS.
      if (copies.length === 2) expect(copies.map(c => c.qos).sort()).toEqual(allowed)
    } finally {
      sub.destroy()
    }
  })

  it('one wildcard subscription at QoS 1: a QoS 2 message arrives at QoS 1', async () => {
    const sub = await subscriber(gw, 'overlap-single', [['single/+', 1]])
    try {
      await publishFrom(pub, 'single/x', 2, 'one')
      await waitFor(() => received(sub, 'one').length === 1, { what: 'the copy' })
      await publishFrom(pub, 'single/y', 0, 'marker-single')
      await waitFor(() => received(sub, 'marker-single').length === 1, { what: 'the marker' })
      expect(received(sub, 'one').map(c => c.qos)).toEqual([1])
    } finally {
      sub.destroy()
    }
  })
})
