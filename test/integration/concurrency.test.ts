// 1,000 REST requests in flight at once, each answered with its own reply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, getStats, type TestGateway } from '../helpers/gateway.js'
import { Responder } from '../helpers/responders.js'

const N = 1000

describe('1,000 concurrent requests', () => {
  let gw: TestGateway
  let responder: Responder

  beforeAll(async () => {
    // All requests come from one address; lift the per-caller limit (1,000 by default) out of the way.
    gw = await startGateway({ maxInFlight: 10_000, maxInFlightPerClient: 5_000 })
    // Holds every request until all N are in flight, then answers them in
    // reverse order, so each reply overtakes the requests made before it.
    responder = await Responder.start(gw.mqttUrl, '$req/many/#')
  })
  afterAll(async () => {
    await responder?.close()
    await gw?.close()
  })

  it('answers each caller with its own reply', async () => {
    const calls = Array.from({ length: N }, async (_, i) => {
      const res = await fetch(`${gw.httpUrl}/api/many/item/${i}?timeout=30`, {
        method: 'POST',
        body: JSON.stringify({ n: i }),
        headers: { 'content-type': 'application/json' }
      })
      return { i, status: res.status, id: res.headers.get('x-request-id'), body: await res.text() }
    })

    const requests = await responder.waitForRequests(N, 30_000)
    // Every request is pending at the gateway at the same moment.
    expect((await getStats(gw.httpUrl)).inFlight).toBe(N)
    expect(new Set(requests.map(r => r.env.id)).size).toBe(N)

    for (const req of [...requests].reverse()) {
      const { n } = JSON.parse(req.env.body ?? '{}') as { n: number }
      void responder.reply(req, { status: 200, headers: { 'content-type': 'application/json' }, body: { n, path: req.env.path, id: req.env.id } })
    }

    const results = await Promise.all(calls)
    for (const r of results) {
      expect(r.status).toBe(200)
      const body = JSON.parse(r.body) as { n: number, path: string, id: string }
      expect(body.n).toBe(r.i)
      expect(body.path).toBe(`/item/${r.i}`)
      expect(body.id).toBe(r.id)
    }
    const stats = await getStats(gw.httpUrl)
    expect(stats.inFlight).toBe(0)
    expect(stats.settled).toBeGreaterThanOrEqual(N)
    expect(Object.values(stats.dropped).reduce((a, b) => a + b, 0)).toBe(0)
  })
})
