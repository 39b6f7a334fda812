// Queued services with a real RabbitMQ: REST and MQTT callers, worker
// processes sharing the load, bursts, async results, crashes and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import amqp from 'amqplib'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient, subscribe } from '../helpers/mqtt.js'
import { rabbitAvailable, startEchoWorker, startRabbit, workerIds, type TestRabbit } from '../helpers/rabbitmq.js'
import type { TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const tag = randomBytes(3).toString('hex')
const svc = (name: string): string => `${name}-${tag}`
const ONE = svc('one')
const THREE = svc('three')
const BURST = svc('burst')
const LATER = svc('later')
const KILL = svc('kill')
const BAD = svc('bad')

describe.skipIf(!rabbitAvailable())('queued services over RabbitMQ', () => {
  let rabbit: TestRabbit
  let gw: TestGateway
  const workers: TestProcess[] = []

  const worker = async (services: string[], prefetch = 10, delayMs = 0): Promise<TestProcess> => {
    const w = await startEchoWorker(rabbit.url, { services, prefetch, delayMs })
    workers.push(w)
    return w
  }
  const post = async (service: string, body: string, init: { timeout?: string, headers?: Record<string, string> } = {}): Promise<Response> =>
    await fetch(`${gw.httpUrl}/api/${service}/item?timeout=${init.timeout ?? '20s'}`, { method: 'POST', body, headers: { 'content-type': 'text/plain', ...init.headers } })

  beforeAll(async () => {
    rabbit = await startRabbit()
    gw = await startGateway({
      amqpUrl: rabbit.url,
      queuedServices: [ONE, THREE, BURST, LATER, KILL, BAD].join(','),
      amqpBridgeOut: '',
      amqpBridgeIn: '',
      amqpReconnectMaxMs: 500,
      // The burst below comes from one (anonymous) REST caller.
      maxInFlightPerClient: 5000
    })
    await gw.app.amqp?.conn.waitUntilUp(30_000)
  })
  afterAll(async () => {
    for (const w of workers) await w.killGroup()
    await gw?.close()
    await rabbit?.close()
  })

  it('answers queued REST requests from one worker process', async () => {
    const w = await worker([ONE])
    const bodies = Array.from({ length: 50 }, (_, i) => `one-${i}-${randomBytes(4).toString('hex')}`)
    const responses = await Promise.all(bodies.map(b => post(ONE, b)))
    const ids: string[] = []
    for (const [i, res] of responses.entries()) {
      expect(res.status).toBe(200)
      expect(await res.text()).toBe(bodies[i])
      expect(res.headers.get('x-echo-method')).toBe('POST')
      ids.push(res.headers.get('x-request-id') ?? '')
    }
    const processed = workerIds(w, 'processed')
    expect(new Set(processed).size).toBe(processed.length)
    expect(processed.sort()).toEqual(ids.sort())
    expect(await (await fetch(`${gw.httpUrl}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { amqp: 'ok' } })
  })

  it('answers an MQTT-native caller of a queued service', async () => {
    const client = await connectClient(gw.mqttUrl, { clientId: `caller-${tag}` })
    await subscribe(client, `$inbox/caller-${tag}/#`)
    const reply = new Promise<Record<string, unknown>>(resolve => client.on('message', (_t, p) => resolve(JSON.parse(p.toString()))))
    await client.publishAsync(`$req/${ONE}/via/mqtt`, JSON.stringify({ id: 'c1', replyTo: `$inbox/caller-${tag}/r`, body: 'from mqtt' }), { qos: 1 })
    expect(await reply).toMatchObject({ id: 'c1', status: 200, body: 'from mqtt' })
    await client.endAsync()
  })

  it('shares the load between three worker processes', async () => {
    const three = await Promise.all([worker([THREE], 1, 20), worker([THREE], 1, 20), worker([THREE], 1, 20)])
    const bodies = Array.from({ length: 60 }, (_, i) => `three-${i}`)
    const responses = await Promise.all(bodies.map(b => post(THREE, b)))
    for (const [i, res] of responses.entries()) {
      expect(res.status).toBe(200)
      expect(await res.text()).toBe(bodies[i])
    }
    const perWorker = three.map(w => workerIds(w, 'processed'))
    const all = perWorker.flat()
    expect(all).toHaveLength(60)
    expect(new Set(all).size).toBe(60)
    for (const ids of perWorker) expect(ids.length).toBeGreaterThan(0)
  })

  it('queues a burst of 2,000 for one slow worker: every request is accepted, then answered or timed out', async () => {
    const w = await worker([BURST], 1, 4)
    const N = 2000
    const conn = await amqp.connect(rabbit.url)
    const ch = await conn.createChannel()
    const deadBefore = (await ch.checkQueue('rtw.dead')).messageCount
    const statuses = new Map<number, number>()
    const answered: string[] = []
    const timedOut: string[] = []
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const body = `burst-${i}`
      const res = await post(BURST, body, { timeout: '4s' })
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      const text = await res.text()
      const id = res.headers.get('x-request-id') ?? ''
      if (res.status === 200) {
        expect(text).toBe(body)
        answered.push(id)
      } else if (res.status === 504) {
        expect(JSON.parse(text).error.code).toBe('RTW_REPLY_TIMEOUT')
        timedOut.push(id)
      }
    }))
    // Accepted means confirmed: nothing refused, nothing dropped; each caller got exactly one outcome.
    expect(Object.fromEntries(statuses)).toEqual({ 200: answered.length, 504: timedOut.length })
    expect((statuses.get(200) ?? 0) + (statuses.get(504) ?? 0)).toBe(N)
    expect(answered.length).toBeGreaterThan(0)
    expect(timedOut.length).toBeGreaterThan(0)
    // Every accepted request ends exactly one way: processed by the worker, or
    // dead-lettered unprocessed because its caller's deadline passed while it was
    // queued (RabbitMQ's per-message TTL, or the worker's deadline check).
    let processed: string[] = []
    let dead = 0
    await waitFor(async () => {
      processed = workerIds(w, 'processed')
      dead = (await ch.checkQueue('rtw.dead')).messageCount - deadBefore
      return processed.length + dead === N
    }, { timeoutMs: 30_000, what: `processed + dead-lettered to reach ${N}` })
    await conn.close()
    expect(new Set(processed).size).toBe(processed.length)
    const processedSet = new Set(processed)
    for (const id of answered) expect(processedSet.has(id)).toBe(true)
    // Everything processed was answered, or taken just before its deadline and
    // answered just after it (the caller had its 504; the late reply was dropped).
    const processedAfterTimeout = timedOut.filter(id => processedSet.has(id)).length
    expect(processed.length).toBe(answered.length + processedAfterTimeout)
    expect(dead).toBe(timedOut.length - processedAfterTimeout)
    console.log(`burst of ${N}: ${answered.length} answered; ${timedOut.length} timed out, of which ${dead} expired unprocessed and ${processedAfterTimeout} were processed at the deadline`)
    const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { inFlight: number }
    expect(stats.inFlight).toBe(0)
  })

  it('answers Prefer: respond-async with 202 and a status URL; the result is readable and arrives over MQTT', async () => {
    await worker([ONE])
    const res = await post(ONE, 'async body', { headers: { prefer: 'respond-async' } })
    expect(res.status).toBe(202)
    const accepted = await res.json() as { id: string, statusUrl: string, topic: string }
    expect(res.headers.get('location')).toBe(accepted.statusUrl)
    expect(accepted.statusUrl).toMatch(/^\/requests\/[A-Za-z0-9_-]{22}$/)
    expect(accepted.topic).toBe(`$result/${accepted.statusUrl.slice('/requests/'.length)}`)

    // Retained, so a subscriber that comes after the 202 still gets it.
    const client = await connectClient(gw.mqttUrl)
    const live = new Promise<Record<string, unknown>>(resolve => client.on('message', (_t, p) => resolve(JSON.parse(p.toString()))))
    await subscribe(client, accepted.topic)
    expect(await live).toMatchObject({ id: accepted.id, status: 200, body: 'async body' })
    await client.endAsync()

    const result = await fetch(gw.httpUrl + accepted.statusUrl)
    expect(result.status).toBe(200)
    expect(result.headers.get('x-rtw-request-state')).toBe('done')
    expect(result.headers.get('x-request-id')).toBe(accepted.id)
    expect(await result.text()).toBe('async body')

    const missing = await fetch(`${gw.httpUrl}/requests/nosuchhandle0000000000`)
    expect(missing.status).toBe(404)
    expect((await missing.json() as { error: { code: string } }).error.code).toBe('RTW_RESULT_NOT_FOUND')
  })

  it('says pending while queued, stores the timeout, and never processes the expired request', async () => {
    // Nobody consumes LATER yet.
    const res = await post(LATER, 'too late', { timeout: '300ms', headers: { prefer: 'respond-async' } })
    expect(res.status).toBe(202)
    const accepted = await res.json() as { id: string, statusUrl: string }
    const pending = await fetch(gw.httpUrl + accepted.statusUrl)
    expect(pending.status).toBe(202)
    expect(pending.headers.get('x-rtw-request-state')).toBe('pending')
    const done = await waitFor(async () => {
      const r = await fetch(gw.httpUrl + accepted.statusUrl)
      return r.headers.get('x-rtw-request-state') === 'done' ? r : null
    }, { timeoutMs: 5_000, what: 'the async request to time out' })
    expect(done.status).toBe(504)
    expect((await done.json() as { error: { code: string } }).error.code).toBe('RTW_REPLY_TIMEOUT')

    // A worker that starts now gets the next request, but not the expired one ahead of it.
    const w = await worker([LATER])
    const next = await post(LATER, 'in time')
    expect(next.status).toBe(200)
    expect(workerIds(w, 'received')).not.toContain(accepted.id)
    expect(workerIds(w, 'processed')).toEqual([next.headers.get('x-request-id')])
  })

  it('redelivers the request of a worker killed mid-request to another worker', async () => {
    const stuck = await worker([KILL], 1, 600_000)
    const pending = post(KILL, 'survives a crash')
    const [, id] = await stuck.waitForOutput(/^received (\S+) redelivered=false$/m) as RegExpMatchArray
    await stuck.killGroup()
    const rescuer = await worker([KILL], 1, 0)
    const res = await pending
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('survives a crash')
    expect(res.headers.get('x-request-id')).toBe(id)
    expect(rescuer.output()).toMatch(new RegExp(`^processed ${id} redelivered=true$`, 'm'))
  })

  it('dead-letters bad AMQP input without blocking the queue or the gateway', async () => {
    const w = await worker([BAD])
    const conn = await amqp.connect(rabbit.url)
    const ch = await conn.createConfirmChannel()
    const dlqBefore = (await ch.checkQueue('rtw.dead')).messageCount
    // A malformed request, then a good one behind it.
    ch.sendToQueue(`rtw.req.${BAD}`, Buffer.from('not json'), { persistent: true })
    await ch.waitForConfirms()
    const ok = await post(BAD, 'still flows')
    expect(ok.status).toBe(200)
    // Replies with an unknown correlation id, or none, reach the gateway's reply queue.
    const replyQueue = gw.app.amqp?.queue.replyQueue ?? ''
    ch.sendToQueue(replyQueue, Buffer.from('{"status":200}'), { correlationId: 'no-such-request' })
    ch.sendToQueue(replyQueue, Buffer.from('{"status":200}'))
    await ch.waitForConfirms()
    await waitFor(async () => {
      const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { amqp: { requests: { rejectedReplies: Record<string, number> } } }
      const r = stats.amqp.requests.rejectedReplies
      return (r.unknown ?? 0) >= 1 && (r['no-correlation-id'] ?? 0) >= 1
    }, { what: 'the gateway to count the bad replies' })
    await waitFor(async () => (await ch.checkQueue('rtw.dead')).messageCount >= dlqBefore + 3, { what: 'three dead letters' })
    expect(w.output()).toMatch(/malformed request/)
    await conn.close()
  })
})
