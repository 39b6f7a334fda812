// Graceful shutdown of the real gateway process (dist/gateway/main.js): on
// SIGTERM/SIGINT it refuses new requests, lets in-flight ones finish within
// RTW_SHUTDOWN_GRACE_MS, answers the rest 503, disconnects clients, exits 0.
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { connectClient } from '../helpers/mqtt.js'
import { freePort, isListening } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { Responder } from '../helpers/responders.js'
import { onceWithin, waitFor } from '../helpers/wait.js'

interface Child { proc: TestProcess, httpUrl: string, httpPort: number, mqttUrl: string, wsUrl: string }

const procs: TestProcess[] = []
const clients: Array<{ close: () => Promise<void> }> = []

async function startGatewayProcess (graceMs: number): Promise<Child> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const proc = startProcess('node', ['dist/gateway/main.js'], {
    env: {
      RTW_HOST: '127.0.0.1',
      RTW_HTTP_PORT: String(httpPort),
      RTW_MQTT_PORT: String(mqttPort),
      RTW_SHUTDOWN_GRACE_MS: String(graceMs),
      RTW_LOG_LEVEL: 'info'
    }
  })
  procs.push(proc)
  await proc.waitForOutput(/gateway ready/)
  return { proc, httpPort, httpUrl: `http://127.0.0.1:${httpPort}`, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, wsUrl: `ws://127.0.0.1:${httpPort}/mqtt` }
}

async function heldResponder (gw: Child): Promise<Responder> {
  const r = await Responder.start(gw.mqttUrl, '$req/slow/#')
  clients.push({ close: async () => { await r.client.endAsync(true) } })
  return r
}

async function post (gw: Child, path: string, body: string): Promise<Response> {
  return await fetch(`${gw.httpUrl}/api/slow/${path}?timeout=30`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
}

async function draining (gw: Child): Promise<void> {
  await waitFor(async () => (await fetch(`${gw.httpUrl}/readyz`)).status === 503, { what: '/readyz to answer 503' })
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  for (const p of procs.splice(0)) await p.killGroup()
})

describe('graceful shutdown of the gateway process', () => {
  it('on SIGTERM: new requests 503, in-flight ones answered or 503 after the grace, clients disconnected, exit 0', async () => {
    const gw = await startGatewayProcess(1500)
    const responder = await heldResponder(gw)
    const wsClient: MqttClient = await connectClient(gw.wsUrl)
    clients.push({ close: async () => { await wsClient.endAsync(true) } })
    const responderClosed = onceWithin(responder.client, 'close', 15_000)
    const wsClosed = onceWithin(wsClient, 'close', 15_000)

    const inFlight = ['one', 'two', 'three'].map(async b => await post(gw, b, b))
    const reqs = await responder.waitForRequests(3)

    gw.proc.signal('SIGTERM')
    await draining(gw)
    expect(gw.proc.output()).toMatch(/SIGTERM: draining/)

    const refused = await post(gw, 'new', 'new')
    expect(refused.status).toBe(503)
    expect(await refused.json()).toMatchObject({ error: { code: 'RTW_SHUTTING_DOWN' } })

    // Two of the three are answered within the grace period.
    for (const r of reqs.filter(r => r.env.body !== 'three')) await responder.reply(r, { body: `done ${r.env.body ?? ''}` })
    const [one, two, three] = await Promise.all(inFlight)
    expect([one?.status, await one?.text()]).toEqual([200, 'done one'])
    expect([two?.status, await two?.text()]).toEqual([200, 'done two'])
    // The third was never answered: 503 once the grace has passed.
    expect(three?.status).toBe(503)
    const body = await three?.json() as { error: { code: string, requestId: string } }
    expect(body.error.code).toBe('RTW_SHUTTING_DOWN')
    expect(body.error.requestId).toBe(reqs.find(r => r.env.body === 'three')?.env.id)

    await responderClosed
    await wsClosed
    expect(await gw.proc.waitForExit()).toEqual({ code: 0, signal: null })
    expect(await isListening(gw.httpPort)).toBe(false)
  })

  it('on SIGINT: exits as soon as the last in-flight request is answered, not after the whole grace', async () => {
    const gw = await startGatewayProcess(60_000)
    const responder = await heldResponder(gw)
    const inFlight = ['a', 'b'].map(async b => await post(gw, b, b))
    const reqs = await responder.waitForRequests(2)

    gw.proc.signal('SIGINT')
    await draining(gw)
    for (const r of reqs) await responder.reply(r, { body: `ok ${r.env.body ?? ''}` })
    const results = await Promise.all(inFlight)
    expect(await Promise.all(results.map(async r => [r.status, await r.text()]))).toEqual([[200, 'ok a'], [200, 'ok b']])
    // Far less than the 60 s grace: nothing was left to wait for.
    expect(await gw.proc.waitForExit(10_000)).toEqual({ code: 0, signal: null })
  })

  it('exits at once when idle, even with MQTT clients connected', async () => {
    const gw = await startGatewayProcess(60_000)
    const idle = await connectClient(gw.mqttUrl)
    clients.push({ close: async () => { await idle.endAsync(true) } })
    const closed = onceWithin(idle, 'close', 10_000)
    gw.proc.signal('SIGTERM')
    await closed
    expect(await gw.proc.waitForExit(10_000)).toEqual({ code: 0, signal: null })
  })
})
