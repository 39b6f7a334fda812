// RabbitMQ stopped and restarted under load: degraded while away, reconnects,
// redeclares, and no confirmed request is lost or processed twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { rabbitAvailable, startEchoWorker, startRabbit, workerIds, type TestRabbit } from '../helpers/rabbitmq.js'
import type { TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { echo } from '../../echo-server/echo.js'

const tag = randomBytes(3).toString('hex')
const QUEUED = `restart-${tag}`
const PLAIN = `plain-${tag}`
const external = (process.env.RTW_TEST_AMQP_URL ?? '') !== ''

describe.skipIf(!rabbitAvailable() || external)('RabbitMQ restarts', () => {
  let rabbit: TestRabbit
  let gw: TestGateway
  let worker: TestProcess
  let responder: MqttClient

  const post = async (service: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${gw.httpUrl}/api/${service}/x?timeout=30s`, { method: 'POST', body, headers: { 'content-type': 'text/plain', ...headers } })
  const readyz = async (): Promise<{ status: number, body: { status: string, checks: Record<string, string> } }> => {
    const res = await fetch(`${gw.httpUrl}/readyz`)
    return { status: res.status, body: await res.json() as { status: string, checks: Record<string, string> } }
  }

  beforeAll(async () => {
    rabbit = await startRabbit()
    gw = await startGateway({ amqpUrl: rabbit.url, queuedServices: QUEUED, amqpReconnectMaxMs: 500 })
    await gw.app.amqp?.conn.waitUntilUp(30_000)
    worker = await startEchoWorker(rabbit.url, { services: [QUEUED], prefetch: 10, delayMs: 2 })
    // An MQTT responder for a service that does not use RabbitMQ.
    responder = await connectClient(gw.mqttUrl)
    await subscribe(responder, `$req/${PLAIN}/#`)
    responder.on('message', (topic, payload) => {
      const out = echo(topic, payload)
      if (out !== null) responder.publish(out.topic, out.payload)
    })
  })
  afterAll(async () => {
    await responder?.endAsync()
    await worker?.killGroup()
    await gw?.close()
    await rabbit?.close()
  })

  it('while RabbitMQ is down: queued services answer 503 at once, /readyz is 503, MQTT-only traffic works; then it recovers', async () => {
    expect((await post(QUEUED, 'before')).status).toBe(200)
    await rabbit.stop()
    const down = await waitFor(async () => { const r = await readyz(); return r.status === 503 ? r : null }, { what: '/readyz to report RabbitMQ down' })
    expect(down.body.status).toBe('degraded')
    expect(down.body.checks.amqp).not.toBe('ok')
    expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)

    const started = Date.now()
    const refused = await post(QUEUED, 'while down')
    expect(refused.status).toBe(503)
    expect((await refused.json() as { error: { code: string } }).error.code).toBe('RTW_QUEUE_UNAVAILABLE')
    expect(Date.now() - started).toBeLessThan(1_000)
    const refusedAsync = await post(QUEUED, 'while down', { prefer: 'respond-async' })
    expect(refusedAsync.status).toBe(503)

    const plain = await post(PLAIN, 'mqtt still works')
    expect(plain.status).toBe(200)
    expect(await plain.text()).toBe('mqtt still works')

    await rabbit.start()
    await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 20_000, what: '/readyz to recover' })
    const after = await post(QUEUED, 'after')
    expect(after.status).toBe(200)
    expect(await after.text()).toBe('after')
    expect(gw.app.amqp?.conn.connects).toBeGreaterThanOrEqual(2)
  })

  interface Result { status: number, code?: string, id: string, ok: boolean }

  /** 16 callers in a loop; `outage` runs once 300 requests were answered, and 300 more must be answered after it. */
  const loadThrough = async (outage: () => Promise<void>): Promise<Result[]> => {
    const results: Result[] = []
    let running = true
    const answered = (): number => results.filter(r => r.status === 200).length
    const user = async (u: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const body = `u${u}-${i}-${randomBytes(3).toString('hex')}`
        const res = await post(QUEUED, body)
        const text = await res.text()
        const r: Result = { status: res.status, id: res.headers.get('x-request-id') ?? '', ok: res.status === 200 && text === body }
        if (res.status !== 200) r.code = (JSON.parse(text) as { error?: { code?: string } }).error?.code
        results.push(r)
        // A client backs off a little after a refusal rather than spinning.
        if (res.status === 503) await new Promise(resolve => setTimeout(resolve, 20))
      }
    }
    const users = Array.from({ length: 16 }, (_, u) => user(u))
    try {
      await waitFor(() => answered() >= 300, { timeoutMs: 20_000, what: '300 answers before the outage' })
      await outage()
      // The gateway must have seen RabbitMQ go before it comes back. Callers may
      // not have: all 16 can be waiting on requests RabbitMQ already confirmed.
      await waitFor(() => gw.app.amqp?.conn.up === false, { what: 'the gateway to see RabbitMQ gone' })
      await rabbit.start()
      const before = answered()
      await waitFor(() => answered() >= before + 300, { timeoutMs: 30_000, what: '300 more answers after the restart' })
    } finally {
      running = false
      await Promise.all(users)
    }
    return results
  }

  /** Nothing confirmed was lost, nothing answered wrongly, nothing processed twice. */
  const expectNothingLost = async (results: Result[], label: string): Promise<void> => {
    const byStatus = new Map<number, number>()
    for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1)
    console.log(`${label}: ${JSON.stringify(Object.fromEntries(byStatus))}`)
    // Every request was either refused up front (never accepted) or answered correctly:
    // nothing confirmed was lost (no 504), and no caller got someone else's reply.
    expect(byStatus.get(200) ?? 0).toBeGreaterThan(0)
    expect([...byStatus.keys()].filter(status => status !== 200 && status !== 503)).toEqual([])
    for (const r of results) {
      if (r.status === 503) expect(r.code).toBe('RTW_QUEUE_UNAVAILABLE')
      else expect(r.ok).toBe(true)
    }
    // None processed twice: redeliveries after the restart were answered from the worker's cache.
    const processed = workerIds(worker, 'processed')
    expect(new Set(processed).size).toBe(processed.length)
    const processedSet = new Set(processed)
    for (const r of results) if (r.status === 200) expect(processedSet.has(r.id)).toBe(true)
    await waitFor(async () => ((await (await fetch(`${gw.httpUrl}/stats`)).json()) as { inFlight: number }).inFlight === 0, { what: 'nothing in flight' })
  }

  it('loses no confirmed request and processes none twice when RabbitMQ restarts mid-load', async () => {
    await expectNothingLost(await loadThrough(() => rabbit.stop()), 'graceful restart under load')
  })

  it('loses no confirmed request and processes none twice when RabbitMQ crashes (SIGKILL) mid-load', async () => {
    await expectNothingLost(await loadThrough(() => rabbit.kill()), 'crash and restart under load')
  })
})
