// Replies taken ahead of Aedes's parser (broker/reply-tap.ts) must behave as
// Aedes would: packets in order, refusals as before, keep-alive kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Packet } from 'mqtt-packet'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectPacket, generate, publishPacket, rawConnect, subscribePacket, type RawClient } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/wait.js'

interface Request { id: string, replyTo: string, body?: string }

/** The requests the gateway has sent this raw responder so far. */
function requestsAt (c: RawClient): Request[] {
  return c.packets
    .filter((p): p is Packet & { cmd: 'publish', payload: Buffer } => p.cmd === 'publish')
    .map(p => JSON.parse(p.payload.toString()) as Request)
}

function replyTo (req: Request, body: string): Buffer {
  return publishPacket(req.replyTo, JSON.stringify({ id: req.id, status: 200, body }))
}

async function call (gw: TestGateway, service: string, body: string): Promise<Response> {
  return await fetch(`${gw.httpUrl}/api/${service}/x?timeout=10`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
}

async function rawResponder (gw: TestGateway, clientId: string, filter: string, keepalive = 60): Promise<RawClient> {
  const c = await rawConnect(gw.mqttPort)
  c.send(connectPacket(clientId, { keepalive }))
  await c.next('connack')
  c.send(subscribePacket([filter], 1))
  await c.next('suback')
  return c
}

describe('replies in the fast lane', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('takes the QoS 0 replies of a connected responder ahead of Aedes, and leaves Aedes a retained one', async () => {
    // Aedes asks authorizePublish about every PUBLISH it parses; the fast lane's replies never reach it.
    // Should an Aedes upgrade shut the lane (readyForReplies in broker.ts), this is where it shows.
    const aedes = gw.app.broker.aedes as unknown as { authorizePublish: (c: unknown, p: { topic: string }, cb: (err: Error | null) => void) => void }
    const authorize = aedes.authorizePublish
    const seenByAedes: string[] = []
    aedes.authorizePublish = function (client, packet, cb) {
      if (packet.topic.startsWith('$res/')) seenByAedes.push(packet.topic)
      authorize.call(this, client, packet, cb)
    }
    try {
      const c = await rawResponder(gw, 'lane-taken', '$req/lane0/#')
      const pending = [call(gw, 'lane0', 'a'), call(gw, 'lane0', 'b')]
      const reqs = await waitFor(() => { const r = requestsAt(c); return r.length >= 2 ? r : undefined }, { what: 'two requests at the raw responder' })
      c.send(Buffer.concat(reqs.map(r => replyTo(r, `re:${r.body}`))))
      expect(await Promise.all(pending.map(async p => await (await p).text()))).toEqual(['re:a', 're:b'])
      expect(seenByAedes).toEqual([])
      // A retained reply is Aedes's to refuse [P-3.6]: it is dropped and counted there.
      c.send(generate({ cmd: 'publish', topic: '$res/lane0/x', payload: '{}', qos: 0, retain: true, dup: false }))
      await waitFor(() => seenByAedes.length === 1, { what: 'the retained reply at Aedes' })
      c.destroy()
    } finally {
      aedes.authorizePublish = authorize
    }
  })

  it('answers both callers and acknowledges a SUBSCRIBE sent between two replies in one write', async () => {
    const c = await rawResponder(gw, 'lane-mixed', '$req/lane1/#')
    const a = call(gw, 'lane1', 'first')
    const b = call(gw, 'lane1', 'second')
    const [ra, rb] = await waitFor(() => {
      const reqs = requestsAt(c)
      return reqs.length >= 2 ? reqs : undefined
    }, { what: 'two requests at the raw responder' })
    c.send(Buffer.concat([replyTo(ra as Request, `re:${ra?.body}`), subscribePacket(['other/#'], 7), replyTo(rb as Request, `re:${rb?.body}`)]))
    const texts = await Promise.all([a, b].map(async r => { const res = await r; return `${res.status} ${await res.text()}` }))
    expect(texts).toEqual(['200 re:first', '200 re:second'])
    const suback = await waitFor(() => c.packets.find(p => p.cmd === 'suback' && p.messageId === 7), { what: 'SUBACK 7' })
    expect((suback as { granted?: number[] }).granted).toEqual([0])
    expect(c.closed).toBe(false)
    c.destroy()
  })

  it('still closes a responder that publishes to a wildcard topic, after answering the reply before it', async () => {
    const c = await rawResponder(gw, 'lane-wild', '$req/lane2/#')
    const a = call(gw, 'lane2', 'only')
    const [req] = await waitFor(() => { const r = requestsAt(c); return r.length >= 1 ? r : undefined }, { what: 'a request at the raw responder' })
    c.send(Buffer.concat([replyTo(req as Request, 'ok'), publishPacket('$res/lane2/+', '{}')]))
    const res = await a
    expect([res.status, await res.text()]).toEqual([200, 'ok'])
    expect(await c.closedWithin(5_000)).toBe(true)
  })

  it('counts replies as activity for the keep-alive: a responder that only replies stays connected', async () => {
    // Keep Alive 1 s: without activity the broker closes the connection after 1.5 s [MQTT-3.1.2-24].
    const c = await rawResponder(gw, 'lane-keepalive', '$req/lane3/#', 1)
    const started = Date.now()
    let n = 0
    while (Date.now() - started < 3_500) {
      const pending = call(gw, 'lane3', `n${n}`)
      const req = await waitFor(() => requestsAt(c)[n], { what: `request ${n} at the raw responder` })
      c.send(replyTo(req, `re:n${n}`))
      const res = await pending
      expect(await res.text()).toBe(`re:n${n}`)
      n++
      // Paces the calls so that the test spans more than two keep-alive periods.
      await new Promise(resolve => setTimeout(resolve, 300))
    }
    expect(c.closed).toBe(false)
    c.destroy()
  })
})
