// A cluster node's start (docs/CLUSTER.md, "Redis unreachable at start"): it
// waits up to 10 s for its Redis, joins one that comes up meanwhile, and
// otherwise exits 69 with one line naming the URL (never its password) and
// the error, rather than start blind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

async function nodeProcess (redisUrl: string, env: Record<string, string> = {}): Promise<TestProcess> {
  return startProcess(process.execPath, ['dist/gateway/main.js'], {
    env: {
      RTW_HOST: '127.0.0.1',
      RTW_HTTP_PORT: String(await freePort()),
      RTW_MQTT_PORT: String(await freePort()),
      RTW_AMQP_URL: '',
      RTW_LOG_LEVEL: 'info',
      RTW_REDIS_URL: redisUrl,
      ...env
    }
  })
}

describe('a cluster node whose Redis is not there at start', () => {
  const procs: TestProcess[] = []
  let redis: TestRedis | undefined

  beforeAll(async () => {
    redis = await startRedis()
  }, 60_000)
  afterAll(async () => {
    for (const p of procs) await p.killGroup()
    await redis?.close()
  })

  it('exits 69 after 10 s with RTW_REDIS_UNREACHABLE, the URL without its password, and the error code', async () => {
    const port = await freePort()
    const proc = await nodeProcess(`redis://ops:s3cret-pass@127.0.0.1:${port}`)
    procs.push(proc)
    const started = Date.now()
    const exit = await proc.waitForExit(40_000)
    expect(exit.code).toBe(69)
    // It waited for Redis (a node may start a moment before it), not just one attempt.
    expect(Date.now() - started).toBeGreaterThanOrEqual(10_000)
    const out = proc.output()
    expect(out).toContain(`RTW_REDIS_UNREACHABLE: Redis at redis://ops:***@127.0.0.1:${port} did not answer within 10000 ms (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port})`)
    expect(out).not.toContain('s3cret-pass')
    // One line, no stack trace.
    expect(out).not.toMatch(/\n\s+at /)
  }, 60_000)

  it('joins a Redis that comes up while it waits', async () => {
    const r = redis as TestRedis
    await r.kill()
    const proc = await nodeProcess(r.url)
    procs.push(proc)
    // Its first attempts fail, then Redis starts on the same port.
    await proc.waitForOutput(/Redis \(\w+\): connect ECONNREFUSED/, 15_000)
    await r.start()
    await proc.waitForOutput(/gateway ready/, 30_000)
    expect(proc.exited).toBeUndefined()
    expect(proc.output()).toMatch(/cluster node \S+ \(.+, epoch \w+\) joined/)
  }, 60_000)
})
