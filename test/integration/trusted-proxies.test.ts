// trustedProxies (README "Security"): behind a trusted reverse proxy the
// per-address limits count each forwarded client on its own; from any other
// peer X-Forwarded-For changes nothing. The test's own sockets come from
// 127.0.0.1, which plays the proxy when it is trusted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder } from '../helpers/responders.js'

interface ErrorJson { error: { code: string } }

/** A REST call the held responder never answers by itself. */
async function call (gw: TestGateway, name: string, xff?: string): Promise<Response> {
  return await fetch(`${gw.httpUrl}/api/slow/${name}?timeout=20`, {
    method: 'POST',
    body: name,
    headers: xff === undefined ? {} : { 'X-Forwarded-For': xff }
  })
}

async function expect429 (res: Response): Promise<void> {
  expect(res.status).toBe(429)
  expect((await res.json() as ErrorJson).error.code).toBe('RTW_TOO_MANY_REQUESTS')
}

/** Answers every request held so far and checks its caller got 200. */
async function release (held: Responder, callers: Array<Promise<Response>>): Promise<void> {
  const reqs = await held.waitForRequests(callers.length)
  for (const r of reqs) await held.reply(r, { body: 'ok' })
  for (const c of callers) expect((await c).status).toBe(200)
  held.requests.length = 0
}

/** Starts a gateway allowing one in-flight request per anonymous REST caller, with a responder that holds requests. */
function restGateway (trustedProxies?: string): { gw: () => TestGateway, held: () => Responder } {
  let gw: TestGateway
  let held: Responder
  beforeAll(async () => {
    gw = await startGateway({ maxInFlightPerClient: 1, maxTimeoutMs: 30_000, ...(trustedProxies === undefined ? {} : { trustedProxies }) })
    held = await Responder.start(gw.mqttUrl, '$req/slow/#')
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })
  return { gw: () => gw, held: () => held }
}

describe('REST without trustedProxies (the default)', () => {
  const { gw, held } = restGateway()

  it('counts callers with different X-Forwarded-For under one address: one budget', async () => {
    const first = call(gw(), 'a', '203.0.113.1')
    await held().waitForRequests(1)
    await expect429(await call(gw(), 'b', '203.0.113.2'))
    await expect429(await call(gw(), 'c'))
    await release(held(), [first])
  })
})

describe('REST with trustedProxies 127.0.0.1', () => {
  const { gw, held } = restGateway('127.0.0.1')

  it('gives each forwarded client its own budget', async () => {
    const a = call(gw(), 'a', '203.0.113.1')
    const b = call(gw(), 'b', '203.0.113.2')
    // The proxy's own requests (no header) are a third caller.
    const proxy = call(gw(), 'p')
    await held().waitForRequests(3)
    await expect429(await call(gw(), 'a2', '203.0.113.1'))
    await expect429(await call(gw(), 'b2', '203.0.113.2'))
    await release(held(), [a, b, proxy])
    // Its slot is free again.
    await release(held(), [call(gw(), 'a3', '203.0.113.1')])
  })

  it('takes the rightmost untrusted address: a client cannot escape by writing one on the left', async () => {
    const a = call(gw(), 'a', '203.0.113.1')
    await held().waitForRequests(1)
    await expect429(await call(gw(), 'forged', '198.51.100.7, 203.0.113.1'))
    // Trusted hops in the chain are skipped.
    await expect429(await call(gw(), 'hops', '203.0.113.1, 127.0.0.1'))
    await release(held(), [a])
  })
})

describe('REST with trustedProxies naming another address (10.9.9.9)', () => {
  const { gw, held } = restGateway('10.9.9.9')

  it('ignores X-Forwarded-For from an untrusted peer, even one naming the trusted proxy', async () => {
    const first = call(gw(), 'a', '203.0.113.1')
    await held().waitForRequests(1)
    await expect429(await call(gw(), 'b', '203.0.113.2'))
    await expect429(await call(gw(), 'c', '203.0.113.3, 10.9.9.9'))
    await release(held(), [first])
  })
})

/** The status a WebSocket upgrade to the MQTT endpoint gets: 101 or the refusal's. */
async function upgrade (gw: TestGateway, xff?: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl, 'mqtt', { headers: xff === undefined ? {} : { 'X-Forwarded-For': xff } })
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.on('open', () => { ws.terminate(); resolve(101) })
    ws.on('error', reject)
  })
}

// connectRate 1: one new connection per second per address, so a second
// upgrade from the same address within the second waits for its turn
// (counted in connectionsDelayed) before it is answered.
describe('WebSocket connectRate without trustedProxies', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 1 }) })
  afterAll(async () => { await gw?.close() })

  it('counts upgrades with different X-Forwarded-For under one address', async () => {
    expect(await upgrade(gw, '203.0.113.1')).toBe(101)
    expect(await upgrade(gw, '203.0.113.2')).toBe(101)
    expect(gw.app.limits.counters.connectionsDelayed).toBe(1)
  })
})

describe('WebSocket connectRate with trustedProxies 127.0.0.1', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 1, trustedProxies: '127.0.0.1' }) })
  afterAll(async () => { await gw?.close() })

  it('counts each forwarded client on its own, like REST', async () => {
    expect(await upgrade(gw, '203.0.113.1')).toBe(101)
    expect(await upgrade(gw, '203.0.113.2')).toBe(101)
    expect(gw.app.limits.counters.connectionsDelayed).toBe(0)
    expect(await Promise.all([upgrade(gw, '198.51.100.7, 203.0.113.1'), upgrade(gw, '203.0.113.2')])).toEqual([101, 101])
    expect(gw.app.limits.counters.connectionsDelayed).toBe(2)
  })
})

describe('WebSocket connectRate with trustedProxies naming another address (10.9.9.9)', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ connectRate: 1, trustedProxies: '10.9.9.9' }) })
  afterAll(async () => { await gw?.close() })

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    expect(await upgrade(gw, '203.0.113.1')).toBe(101)
    expect(await upgrade(gw, '203.0.113.2')).toBe(101)
    expect(gw.app.limits.counters.connectionsDelayed).toBe(1)
  })
})
