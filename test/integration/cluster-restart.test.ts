// A cluster node's identity across a kill -9 (docs/CLUSTER.md, [P-5.1]): the
// restarted node has the same node id (by default <hostname>:<httpPort>) and a
// new boot epoch, so an async request it accepted before the crash is finished
// from its reply queue once its worker answers, and its new correlation ids
// never repeat the old ones. A second live node with the same RTW_NODE_ID
// does not start.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rabbitAvailable, startEchoWorker, startRabbit, workerIds, type TestRabbit } from '../helpers/rabbitmq.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js'
import { freePort } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const tag = randomBytes(3).toString('hex')
const SLOW = `slow-${tag}`
const B_NAME = `node-b-${tag}`

interface ClusterStats { node: string, name: string, epoch: string }

async function clusterStats (gw: GatewayProcess): Promise<ClusterStats> {
  return ((await (await fetch(`${gw.httpUrl}/stats`)).json()) as { cluster: ClusterStats }).cluster
}

describe.skipIf(!rabbitAvailable() || !redisAvailable())('a cluster node killed and restarted', () => {
  let rabbit: TestRabbit
  let redis: TestRedis
  let worker: TestProcess
  let a: GatewayProcess
  let b: GatewayProcess
  const others: TestProcess[] = []

  beforeAll(async () => {
    ;[rabbit, redis] = await Promise.all([startRabbit(), startRedis()])
    worker = await startEchoWorker(rabbit.url, { services: [SLOW], delayMs: 2_000 })
    const env = { RTW_REDIS_URL: redis.url, RTW_AMQP_URL: rabbit.url, RTW_QUEUED_SERVICES: SLOW, RTW_AMQP_RECONNECT_MAX_MS: '500' }
    a = await startGatewayProcess(env)
    b = await startGatewayProcess({ ...env, RTW_NODE_ID: B_NAME })
    await a.ready()
    await b.ready()
  }, 120_000)
  afterAll(async () => {
    for (const p of others) await p.killGroup()
    await a?.crash()
    await b?.crash()
    await worker?.killGroup()
    await rabbit?.close()
    await redis?.close()
  })

  it('keeps its node id, takes a new epoch, and finishes an async request accepted before the kill', async () => {
    const before = await clusterStats(a)
    expect(before.name).toMatch(new RegExp(`:${new URL(a.httpUrl).port}$`))
    const accepted = await fetch(`${a.httpUrl}/api/${SLOW}/job?timeout=30s`, { method: 'POST', body: 'pending at the crash', headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
    expect(accepted.status).toBe(202)
    const statusUrl = accepted.headers.get('location') as string
    const id = accepted.headers.get('x-request-id') as string
    expect(id.startsWith(before.node + before.epoch)).toBe(true)

    await a.crash()
    // The worker answers while A is dead; the reply waits in A's reply queue.
    await waitFor(() => workerIds(worker, 'processed').includes(id), { timeoutMs: 20_000, what: 'the worker to answer' })
    expect((await fetch(b.httpUrl + statusUrl)).status).toBe(202)
    await a.restart()
    await a.ready()

    const after = await clusterStats(a)
    expect(after.node).toBe(before.node)
    expect(after.name).toBe(before.name)
    expect(after.epoch).not.toBe(before.epoch)
    // Read on the other node: the result is in the cluster's store.
    const done = await waitFor(async () => { const r = await fetch(b.httpUrl + statusUrl); return r.status === 200 ? r : null },
      { timeoutMs: 20_000, what: 'the result after the restart' })
    expect(done.headers.get('x-rtw-request-state')).toBe('done')
    expect(await done.text()).toBe('pending at the crash')
    expect(workerIds(worker, 'processed').filter(p => p === id)).toHaveLength(1)

    // Ids of the new life name the same node, with the new epoch.
    const fresh = await fetch(`${a.httpUrl}/api/${SLOW}/job?timeout=30s`, { method: 'POST', body: 'after', headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
    const freshId = fresh.headers.get('x-request-id') as string
    expect(freshId.startsWith(after.node + after.epoch)).toBe(true)
    expect(freshId.startsWith(before.node + before.epoch)).toBe(false)
  }, 90_000)

  it('refuses to start a second live node with the same RTW_NODE_ID, and says which node holds it', async () => {
    const twin = startProcess(process.execPath, ['dist/gateway/main.js'], {
      env: {
        RTW_HOST: '127.0.0.1',
        RTW_HTTP_PORT: String(await freePort()),
        RTW_MQTT_PORT: String(await freePort()),
        RTW_AMQP_URL: '',
        RTW_REDIS_URL: redis.url,
        RTW_NODE_ID: B_NAME,
        RTW_LOG_LEVEL: 'info'
      }
    })
    others.push(twin)
    const exit = await twin.waitForExit(30_000)
    expect(exit.code).toBe(78)
    expect(twin.output()).toContain(`RTW_NODE_ID_TAKEN: node id "${B_NAME}" (${(await clusterStats(b)).node}) is held by a live node of this cluster: ${B_NAME} (pid ${b.proc.pid}`)
    expect(twin.output()).not.toMatch(/gateway ready/)
    // B was not disturbed.
    expect((await fetch(`${b.httpUrl}/readyz`)).status).toBe(200)
  }, 60_000)
})
