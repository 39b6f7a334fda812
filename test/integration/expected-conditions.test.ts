// Expected conditions are not errors: a 503 RTW_QUEUE_UNAVAILABLE while
// RabbitMQ is down is logged at warn, without a stack, and rate-limited, not
// once per request at error level.
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../gateway/app.js'
import { loadConfig } from '../../gateway/config.js'
import { freePort } from '../helpers/ports.js'

describe('logging of expected conditions', () => {
  const lines: Array<{ level: number, msg: string, err?: { stack?: string }, kind?: string }> = []
  let app: FastifyInstance
  let url: string
  beforeAll(async () => {
    // Nothing listens there: RabbitMQ stays down, and the queued service answers 503.
    const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, amqpUrl: `amqp://127.0.0.1:${await freePort()}`, queuedServices: 'jobs', amqpReconnectMaxMs: 100 } })
    const stream = new Writable({ write (chunk: Buffer, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l)); cb() } })
    app = await buildApp(config, { logger: { level: 'info', stream } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const addr = app.server.address()
    url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  })
  afterAll(async () => { await app?.close() })

  it('logs a 503 RTW_QUEUE_UNAVAILABLE at warn, without a stack, at most 10 times per 10 s', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${url}/api/jobs/x`, { method: 'POST', body: 'x' })
      expect(res.status).toBe(503)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_QUEUE_UNAVAILABLE')
    }
    const about = lines.filter(l => JSON.stringify(l).includes('RTW_QUEUE_UNAVAILABLE'))
    expect(about.length).toBeGreaterThan(0)
    expect(about.length).toBeLessThanOrEqual(10)
    expect(about.every(l => l.level === 40)).toBe(true)
    expect(about.some(l => l.err !== undefined)).toBe(false)
    expect(lines.filter(l => l.level >= 50)).toEqual([])
  })
})
