// The AMQP worker's dedupe store (docs/AMQP.md §3.1) with real RabbitMQ: an
// idempotent call that reaches the queue again after the worker was killed
// with kill -9 and restarted (and the gateway lost its own record) is answered
// from the store, not processed again. Without a store it would run twice.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rabbitAvailable, startEchoWorker, startRabbit, workerIds, type TestRabbit } from '../helpers/rabbitmq.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { startGateway } from '../helpers/gateway.js'
import type { TestProcess } from '../helpers/processes.js'

const tag = randomBytes(3).toString('hex')

describe.skipIf(!rabbitAvailable() || !redisAvailable())('worker dedupe across a worker restart', () => {
  let rabbit: TestRabbit
  let redis: TestRedis
  const dir = mkdtempSync(join(tmpdir(), 'rtw-worker-'))
  const workers: TestProcess[] = []

  beforeAll(async () => {
    rabbit = await startRabbit()
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const w of workers) await w.killGroup()
    await rabbit?.close()
    await redis?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** One idempotent call through a fresh in-process gateway (its memory forgets the record when it closes). */
  const callOnce = async (service: string, key: string, body: string): Promise<{ status: number, id: string, text: string }> => {
    const gw = await startGateway({ amqpUrl: rabbit.url, queuedServices: service, amqpReconnectMaxMs: 500 })
    try {
      await gw.app.amqp?.conn.waitUntilUp(30_000)
      const res = await fetch(`${gw.httpUrl}/api/${service}/charge?timeout=20s`, { method: 'POST', body, headers: { 'content-type': 'text/plain', 'idempotency-key': key } })
      return { status: res.status, id: res.headers.get('x-request-id') ?? '', text: await res.text() }
    } finally {
      await gw.close()
    }
  }

  const cases: Array<{ store: string, env: () => Record<string, string>, dedupes: boolean }> = [
    { store: 'LevelDB in RTW_WORKER_DATA_DIR', env: () => ({ RTW_WORKER_DATA_DIR: dir }), dedupes: true },
    { store: 'Redis (RTW_REDIS_URL)', env: () => ({ RTW_REDIS_URL: redis.url }), dedupes: true },
    { store: 'memory only (the control)', env: () => ({}), dedupes: false }
  ]

  it.each(cases)('$store', async ({ store, env, dedupes }) => {
    const service = `dedupe-${tag}-${workers.length}`
    const first = await startEchoWorker(rabbit.url, { services: [service], env: env() })
    workers.push(first)
    if (store.startsWith('LevelDB')) expect(first.output()).toContain(`dedupe store level in ${dir}/worker`)
    const key = `charge-${service}`
    const one = await callOnce(service, key, 'charge 42')
    expect(one.status).toBe(200)
    expect(one.text).toBe('charge 42')
    expect(workerIds(first, 'processed')).toEqual([one.id])

    await first.killGroup()
    const second = await startEchoWorker(rabbit.url, { services: [service], env: env() })
    workers.push(second)

    // The same key again: the gateway's record is gone (a new gateway with memory state), so it goes to the queue.
    const two = await callOnce(service, key, 'charge 42')
    expect(two.status).toBe(200)
    expect(two.text).toBe('charge 42')
    expect(two.id).not.toBe(one.id)
    if (dedupes) {
      expect(second.output()).toMatch(new RegExp(`^duplicate ${two.id}$`, 'm'))
      expect(workerIds(second, 'processed')).toEqual([])
    } else {
      expect(workerIds(second, 'processed')).toEqual([two.id])
    }
    // A different key is new work on any store.
    const other = await callOnce(service, `${key}-other`, 'charge 43')
    expect(workerIds(second, 'processed')).toContain(other.id)
  })
})
