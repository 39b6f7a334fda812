// Gateway state on disk (dataDir): real gateway processes from dist/, killed
// with kill -9 in the middle of traffic and restarted on the same directory.
// Async results and idempotency records that a caller was answered with must
// read back after the restart; a queued service's worker (its own process)
// runs each idempotent call once.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rabbitAvailable, startEchoWorker, startRabbit, workerIds, type TestRabbit } from '../helpers/rabbitmq.js'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js'
import type { TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const tag = randomBytes(3).toString('hex')
const QUEUED = `durable-${tag}`
const SLOW = `slow-${tag}`

describe.skipIf(!rabbitAvailable())('gateway state survives kill -9 with dataDir', () => {
  let rabbit: TestRabbit
  let worker: TestProcess
  let slowWorker: TestProcess
  let gw: GatewayProcess
  const dataDir = mkdtempSync(join(tmpdir(), 'rtw-state-'))

  beforeAll(async () => {
    rabbit = await startRabbit()
    worker = await startEchoWorker(rabbit.url, { services: [QUEUED], prefetch: 20 })
    slowWorker = await startEchoWorker(rabbit.url, { services: [SLOW], delayMs: 2_000 })
    gw = await startGatewayProcess({ RTW_DATA_DIR: dataDir, RTW_AMQP_URL: rabbit.url, RTW_QUEUED_SERVICES: `${QUEUED},${SLOW}`, RTW_AMQP_RECONNECT_MAX_MS: '500' })
    await gw.ready()
  })
  afterAll(async () => {
    await gw?.crash()
    await worker?.killGroup()
    await slowWorker?.killGroup()
    await rabbit?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const post = async (path: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${gw.httpUrl}/api/${QUEUED}${path}?timeout=20s`, { method: 'POST', body, headers: { 'content-type': 'text/plain', ...headers } })

  interface Answer { key: string, path: string, body: string, status: number, text: string, id: string | null }

  it('answered idempotent calls replay, and finished async results read back, after a kill -9 mid-traffic', async () => {
    // An async request, finished before the crash.
    const accepted = await post('/async', 'async before the crash', { prefer: 'respond-async' })
    expect(accepted.status).toBe(202)
    const statusUrl = accepted.headers.get('location') as string
    await waitFor(async () => (await fetch(gw.httpUrl + statusUrl)).status === 200, { what: 'the async result to finish' })

    // Idempotent calls from 8 callers in a loop; the gateway is killed while they run.
    const answered: Answer[] = []
    let running = true
    const caller = async (c: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const key = `k-${tag}-${c}-${i}`
        const path = `/pay/${c}/${i}`
        const body = `caller ${c} call ${i}`
        try {
          const res = await post(path, body, { 'idempotency-key': key })
          answered.push({ key, path, body, status: res.status, text: await res.text(), id: res.headers.get('x-request-id') })
        } catch {
          return // the connection died with the gateway
        }
      }
    }
    const callers = Array.from({ length: 8 }, (_, c) => caller(c))
    await waitFor(() => answered.length >= 100, { timeoutMs: 30_000, what: '100 answered calls before the crash' })
    await gw.crash()
    running = false
    await Promise.all(callers)
    const before = answered.filter(a => a.status === 200)
    expect(before.length).toBeGreaterThanOrEqual(100)
    for (const a of before) expect(a.text).toBe(a.body)

    await gw.restart()
    await gw.ready()

    const result = await fetch(gw.httpUrl + statusUrl)
    expect(result.status).toBe(200)
    expect(result.headers.get('x-rtw-request-state')).toBe('done')
    expect(await result.text()).toBe('async before the crash')

    // Every call that was answered before the crash is answered the same way, from the record.
    for (const a of before) {
      const again = await post(a.path, a.body, { 'idempotency-key': a.key })
      expect(again.status).toBe(200)
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(again.headers.get('x-request-id')).toBe(a.id)
      expect(await again.text()).toBe(a.body)
    }
    // And each ran once at the worker.
    const processed = workerIds(worker, 'processed')
    for (const a of before) expect(processed.filter(id => id === a.id)).toHaveLength(1)

    // The restarted gateway still takes new work.
    const fresh = await post('/after', 'after the restart', { 'idempotency-key': `fresh-${tag}` })
    expect(fresh.status).toBe(200)
    expect(fresh.headers.get('idempotent-replayed')).toBeNull()
  })

  it('an async request still pending at the kill -9 is finished after the restart, from the same reply queue', async () => {
    const accepted = await fetch(`${gw.httpUrl}/api/${SLOW}/job?timeout=30s`, { method: 'POST', body: 'pending at the crash', headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
    expect(accepted.status).toBe(202)
    const statusUrl = accepted.headers.get('location') as string
    const id = accepted.headers.get('x-request-id') as string
    expect((await fetch(gw.httpUrl + statusUrl)).status).toBe(202)
    await gw.crash()
    // The worker answers while no gateway runs; the reply waits in the node's durable reply queue.
    await waitFor(() => workerIds(slowWorker, 'processed').includes(id), { timeoutMs: 20_000, what: 'the worker to answer' })
    await gw.restart()
    await gw.ready()
    const done = await waitFor(async () => { const r = await fetch(gw.httpUrl + statusUrl); return r.status === 200 ? r : null }, { timeoutMs: 20_000, what: 'the result after the restart' })
    expect(done.headers.get('x-rtw-request-state')).toBe('done')
    expect(await done.text()).toBe('pending at the crash')
    expect(workerIds(slowWorker, 'processed').filter(p => p === id)).toHaveLength(1)
  })

  it('a second gateway process on the same dataDir refuses to start instead of sharing it', async () => {
    const { startProcess } = await import('../helpers/processes.js')
    const { freePort } = await import('../helpers/ports.js')
    const second = startProcess(process.execPath, ['dist/gateway/main.js'], {
      env: { RTW_HTTP_PORT: String(await freePort()), RTW_MQTT_PORT: String(await freePort()), RTW_DATA_DIR: dataDir, RTW_LOG_LEVEL: 'info' }
    })
    const exit = await second.waitForExit(30_000)
    expect(exit.code).not.toBe(0)
    expect(second.output()).toMatch(/RTW_CONFIG_INVALID|lock|LOCK/)
    expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)
  })
})
