// The test Redis really is a server: it answers, survives nothing on kill -9
// without persistence, and starts again on the same port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { answersPing } from '../../scripts/redis-node.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'

describe.runIf(redisAvailable())('test Redis', () => {
  let redis: TestRedis
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis?.close() })

  it('answers PING, is gone after kill -9, and starts again on the same port', async () => {
    expect(await answersPing(redis.port)).toBe(true)
    await redis.kill()
    expect(await answersPing(redis.port)).toBe(false)
    await redis.start()
    expect(await answersPing(redis.port)).toBe(true)
  })
})
