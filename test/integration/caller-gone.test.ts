// [P-5.7] A REST caller that hangs up gives its request up at once: its
// in-flight places are free again, and the reply that comes later is late.
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getStats, startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'

/** Sends a request and resolves once the responder holds it; `abort` then closes the connection. */
function startCall (gw: TestGateway, path: string): { abort: () => void, done: Promise<number | 'closed'> } {
  const req = request(`${gw.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain' } })
  const done = new Promise<number | 'closed'>(resolve => {
    req.on('response', res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', () => resolve('closed'))
  })
  req.end('held')
  return { abort: () => req.destroy(), done }
}

describe('a REST caller that closes its connection before the reply', () => {
  let gw: TestGateway
  let held: Responder

  beforeAll(async () => {
    // One request per caller at a time, so a place held by a gone caller would show as 429.
    gw = await startGateway({ maxInFlightPerClient: 1, requestTimeoutMs: 30_000, maxTimeoutMs: 60_000 })
    held = await Responder.start(gw.mqttUrl, '$req/held/#')
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })

  it('frees its in-flight place at once, and its late reply is dropped, not sent to anyone', async () => {
    const first = startCall(gw, '/api/held/one?timeout=30')
    const [req] = await held.waitForRequests(1)
    expect((await getStats(gw.httpUrl)).inFlight).toBe(1)

    first.abort()
    expect(await first.done).toBe('closed')
    await waitFor(async () => (await getStats(gw.httpUrl)).inFlight === 0, { what: 'the gone caller\'s request to be given up' })
    expect((await getStats(gw.httpUrl)).cancelled).toBe(1)

    // The same caller (same address) may call again at once: its place was given back.
    const second = startCall(gw, '/api/held/two?timeout=30')
    const [, req2] = await held.waitForRequests(2)
    // The first request's reply arrives after its caller left: dropped as late.
    await held.reply(req as NonNullable<typeof req>, { body: 'for nobody' })
    await waitFor(async () => (await getStats(gw.httpUrl)).dropped.late === 1, { what: 'the late reply to be counted' })
    await held.reply(req2 as NonNullable<typeof req2>, { body: 'for the second caller' })
    expect(await second.done).toBe(200)
    const stats = await getStats(gw.httpUrl)
    expect([stats.inFlight, stats.cancelled, stats.dropped.late]).toEqual([0, 1, 1])
  })
})
