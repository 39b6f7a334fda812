// GET /metrics (Prometheus text format, prom-client): the metric names the
// README lists, counting what really happened over real sockets; the service
// label cap; /stats showing the same numbers; and the auth rule for /metrics.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { scrape } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait.js'
import { startRedis } from '../helpers/redis.js'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { get as httpGet } from 'node:http'
import { mintToken } from '../../gateway/cli/token.js'
import { DURATION_BUCKETS } from '../../gateway/metrics/registry.js'
import { freePort } from '../helpers/ports.js'
import { instanceIndex } from '../../gateway/plugins/metrics-port.js'

const call = async (gw: TestGateway, service: string, init: RequestInit = {}): Promise<Response> => {
  const res = await fetch(`${gw.httpUrl}/api/${service}/x`, { method: 'POST', body: 'hi', ...init })
  await res.arrayBuffer()
  return res
}

describe('/metrics', () => {
  let gw: TestGateway
  let echo: Responder
  beforeAll(async () => {
    gw = await startGateway({ metricsMaxServices: 5 })
    echo = await startEcho(gw.mqttUrl)
  })
  afterAll(async () => {
    await echo.close()
    await gw.close()
  })

  it('serves every documented metric with its type, and Node process metrics', async () => {
    const m = await scrape(gw.httpUrl)
    expect(Object.fromEntries(['rtw_connections', 'rtw_subscriptions', 'rtw_messages_received_total', 'rtw_messages_sent_total',
      'rtw_messages_dropped_total', 'rtw_requests_total', 'rtw_request_duration_seconds', 'rtw_requests_in_flight', 'rtw_amqp_up'
    ].map(n => [n, m.types.get(n)]))).toEqual({
      rtw_connections: 'gauge',
      rtw_subscriptions: 'gauge',
      rtw_messages_received_total: 'counter',
      rtw_messages_sent_total: 'counter',
      rtw_messages_dropped_total: 'counter',
      rtw_requests_total: 'counter',
      rtw_request_duration_seconds: 'histogram',
      rtw_requests_in_flight: 'gauge',
      rtw_amqp_up: 'gauge'
    })
    expect(m.value('process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(m.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge')
    // Not configured: RabbitMQ is not up.
    expect(m.value('rtw_amqp_up')).toBe(0)
    for (const reason of ['late', 'duplicate', 'unknown', 'retained', 'undecodable', 'wrong-service', 'bad-request']) {
      expect(m.value('rtw_messages_dropped_total', { reason }), reason).toBeDefined()
    }
  })

  it('counts REST requests by service, status and transport, with their durations', async () => {
    for (let i = 0; i < 3; i++) expect((await call(gw, 'echo')).status).toBe(200)
    expect((await call(gw, 'nobody')).status).toBe(404)
    const m = await scrape(gw.httpUrl)
    expect(m.value('rtw_requests_total', { service: 'echo', status: '200', transport: 'rest' })).toBe(3)
    expect(m.value('rtw_requests_total', { service: 'nobody', status: '404', transport: 'rest' })).toBe(1)
    // Only admitted requests have a duration; the buckets resolve 0.1 ms to 60 s.
    expect(m.value('rtw_request_duration_seconds_count', { service: 'echo' })).toBe(3)
    expect(m.value('rtw_request_duration_seconds_sum', { service: 'echo' })).toBeGreaterThan(0)
    expect(m.value('rtw_request_duration_seconds_count', { service: 'nobody' })).toBeUndefined()
    const bounds = m.samples.filter(s => s.name === 'rtw_request_duration_seconds_bucket' && s.labels.service === 'echo').map(s => s.labels.le)
    expect(bounds).toEqual([...DURATION_BUCKETS.map(String), '+Inf'])
    expect(m.value('rtw_request_duration_seconds_bucket', { service: 'echo', le: '+Inf' })).toBe(3)
  })

  it('counts MQTT callers under transport="mqtt", and shows in-flight requests while they wait', async () => {
    const held = await Responder.start(gw.mqttUrl, '$req/held/#')
    const caller = await connectClient(gw.mqttUrl, { clientId: 'metrics-caller' })
    try {
      await subscribe(caller, '$inbox/metrics-caller/#')
      const reply = nextMessage(caller)
      caller.publish('$req/held/x', JSON.stringify({ id: 'c1', replyTo: '$inbox/metrics-caller/r', method: 'GET' }))
      await waitFor(() => held.requests.length === 1, { what: 'the held request' })
      expect((await scrape(gw.httpUrl)).value('rtw_requests_in_flight')).toBe(1)
      held.client.publish(held.requests[0]?.env.replyTo as string, JSON.stringify({ id: held.requests[0]?.env.id, status: 201 }))
      await reply
      const m = await scrape(gw.httpUrl)
      expect(m.value('rtw_requests_in_flight')).toBe(0)
      expect(m.value('rtw_requests_total', { service: 'held', status: '201', transport: 'mqtt' })).toBe(1)
    } finally {
      await caller.endAsync()
      await held.close()
    }
  })

  it('shows connections by transport and the subscriptions they hold', async () => {
    const before = await scrape(gw.httpUrl)
    const tcp = await connectClient(gw.mqttUrl)
    const ws = await connectClient(gw.wsUrl)
    try {
      await subscribe(tcp, ['a/#', 'b/+'])
      await subscribe(ws, 'c')
      const m = await scrape(gw.httpUrl)
      expect(m.value('rtw_connections', { transport: 'tcp' })).toBe((before.value('rtw_connections', { transport: 'tcp' }) ?? 0) + 1)
      expect(m.value('rtw_connections', { transport: 'ws' })).toBe((before.value('rtw_connections', { transport: 'ws' }) ?? 0) + 1)
      expect(m.value('rtw_subscriptions')).toBe((before.value('rtw_subscriptions') ?? 0) + 3)
    } finally {
      await tcp.endAsync()
      await ws.endAsync()
    }
    await waitFor(async () => (await scrape(gw.httpUrl)).value('rtw_connections', { transport: 'ws' }) === before.value('rtw_connections', { transport: 'ws' }), { what: 'the ws connection to be gone' })
  })

  it('counts SSE streams as transport="sse"', async () => {
    const abort = new AbortController()
    const stream = await fetch(`${gw.httpUrl}/events?topic=sse/x`, { signal: abort.signal })
    try {
      expect(stream.status).toBe(200)
      expect((await scrape(gw.httpUrl)).value('rtw_connections', { transport: 'sse' })).toBe(1)
    } finally {
      abort.abort()
    }
    await waitFor(async () => (await scrape(gw.httpUrl)).value('rtw_connections', { transport: 'sse' }) === 0, { what: 'the stream to be closed' })
  })

  it('counts PUBLISH packets received and sent by QoS', async () => {
    const sub = await connectClient(gw.mqttUrl)
    const pub = await connectClient(gw.wsUrl)
    try {
      await subscribe(sub, 'count/#', 1)
      const before = await scrape(gw.httpUrl)
      const got = new Promise<void>(resolve => {
        let n = 0
        sub.on('message', () => { if (++n === 3) resolve() })
      })
      await pub.publishAsync('count/a', 'x', { qos: 0 })
      await pub.publishAsync('count/b', 'x', { qos: 1 })
      await pub.publishAsync('count/c', 'x', { qos: 1 })
      await got
      const m = await scrape(gw.httpUrl)
      const delta = (name: string, qos: string): number => (m.value(name, { qos }) ?? 0) - (before.value(name, { qos }) ?? 0)
      expect(delta('rtw_messages_received_total', '0')).toBe(1)
      expect(delta('rtw_messages_received_total', '1')).toBe(2)
      expect(delta('rtw_messages_sent_total', '0')).toBe(1)
      expect(delta('rtw_messages_sent_total', '1')).toBe(2)
      const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { messages: { received: number[], sent: number[] } }
      expect(stats.messages.received[1]).toBe(m.value('rtw_messages_received_total', { qos: '1' }))
    } finally {
      await sub.endAsync()
      await pub.endAsync()
    }
  })

  it('counts dropped replies by reason, the numbers /stats shows', async () => {
    const c = await connectClient(gw.mqttUrl)
    try {
      await c.publishAsync('$res/echo/$rid/nonexistent', JSON.stringify({ id: 'nonexistent', status: 200 }), { qos: 1, retain: true })
      await waitFor(async () => (await scrape(gw.httpUrl)).value('rtw_messages_dropped_total', { reason: 'retained' }) === 1, { what: 'the retained reply to be counted' })
    } finally {
      await c.endAsync()
    }
    const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { messagesDropped: Record<string, number>, requests: Record<string, Record<string, number>>, dropped: Record<string, number> }
    const m = await scrape(gw.httpUrl)
    for (const [reason, n] of Object.entries(stats.messagesDropped)) expect(m.value('rtw_messages_dropped_total', { reason }), reason).toBe(n)
    expect(stats.dropped.retained).toBe(1)
    expect(stats.requests.echo?.['200']).toBe(m.sum('rtw_requests_total', { service: 'echo', status: '200' }))
  })

  it('gives the first metricsMaxServices services a label each and counts the rest as service="other"', async () => {
    const cap = await startGateway({ metricsMaxServices: 2 })
    try {
      for (const s of ['s1', 's2', 's3', 's4', 's4']) expect((await call(cap, s)).status).toBe(404)
      const m = await scrape(cap.httpUrl)
      const services = new Set(m.samples.filter(s => s.name === 'rtw_requests_total').map(s => s.labels.service))
      expect([...services].sort()).toEqual(['other', 's1', 's2'])
      expect(m.value('rtw_requests_total', { service: 'other', status: '404' })).toBe(3)
    } finally {
      await cap.close()
    }
  })
})

describe('/metrics and /stats with auth on', () => {
  const SECRET = 'metrics-test-secret'
  const dir = mkdtempSync(join(tmpdir(), 'rtw-metrics-'))
  const KEY = 'k'.repeat(40)
  let gw: TestGateway
  beforeAll(async () => {
    const keys = join(dir, 'keys.json')
    writeFileSync(keys, JSON.stringify({ keys: [{ key: KEY, sub: 'prometheus', rtw: { subscribe: ['$SYS/#'] } }] }))
    gw = await startGateway({ jwtSecret: SECRET, apiKeysFile: keys })
  })
  afterAll(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('needs a token: 401 without one', async () => {
    const res = await fetch(`${gw.httpUrl}/metrics`)
    expect(res.status).toBe(401)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_UNAUTHORIZED')
  })

  it('answers 403 to a token whose grants do not cover $SYS/#, even one with "#"', async () => {
    const token = await mintToken(['--sub', 'u', '--subscribe', '#', '--call', '*', '--secret', SECRET], {})
    const res = await fetch(`${gw.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(403)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RTW_FORBIDDEN')
  })

  it('applies the same rule to /stats: 401 without a token, 403 without the $SYS/# grant, the counters with it', async () => {
    const none = await fetch(`${gw.httpUrl}/stats`)
    expect(none.status).toBe(401)
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('RTW_UNAUTHORIZED')
    const wide = await mintToken(['--sub', 'u', '--subscribe', '#', '--call', '*', '--secret', SECRET], {})
    const forbidden = await fetch(`${gw.httpUrl}/stats`, { headers: { authorization: `Bearer ${wide}` } })
    expect(forbidden.status).toBe(403)
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('RTW_FORBIDDEN')
    const ops = await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--secret', SECRET], {})
    for (const token of [ops, KEY]) {
      const res = await fetch(`${gw.httpUrl}/stats`, { headers: { authorization: `Bearer ${token}` } })
      expect(res.status).toBe(200)
      expect(typeof ((await res.json()) as { inFlight: unknown }).inFlight).toBe('number')
    }
  })

  it('serves a JWT or an API key that may subscribe to $SYS/#', async () => {
    const token = await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--secret', SECRET], {})
    expect((await scrape(gw.httpUrl, token)).types.get('rtw_requests_total')).toBe('counter')
    expect((await scrape(gw.httpUrl, KEY)).types.get('rtw_connections')).toBe('gauge')
  })
})

/**
 * A TCP proxy to Redis that can cut every connection and refuse new ones, and
 * then let them through again, without giving up its port (a restarted
 * redis-server would have to take its port back, racing other tests for it).
 */
async function cuttableProxy (target: number): Promise<{ port: number, cut: () => void, restore: () => void, close: () => Promise<void> }> {
  let open = true
  const pairs = new Set<Socket>()
  const server = createServer(client => {
    if (!open) { client.destroy(); return }
    const upstream = connect(target, '127.0.0.1')
    pairs.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => { client.destroy(); upstream.destroy(); pairs.delete(s) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    cut: () => { open = false; for (const s of pairs) s.destroy() },
    restore: () => { open = true },
    close: async () => { for (const s of pairs) s.destroy(); await new Promise(resolve => server.close(resolve)) }
  }
}

describe('rtw_redis_up', () => {
  it('is 1 while the cluster\'s Redis serves, 0 while it cannot be reached, and 1 again once it can', async () => {
    const redis = await startRedis()
    const proxy = await cuttableProxy(redis.port)
    let gw: TestGateway | undefined
    try {
      gw = await startGateway({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
      const up = gw
      const redisUp = async (): Promise<number | undefined> => (await scrape(up.httpUrl)).value('rtw_redis_up')
      await waitFor(async () => await redisUp() === 1, { what: 'rtw_redis_up 1' })
      proxy.cut()
      await waitFor(async () => await redisUp() === 0, { what: 'rtw_redis_up 0' })
      proxy.restore()
      await waitFor(async () => await redisUp() === 1, { timeoutMs: 20_000, what: 'rtw_redis_up 1 again' })
    } finally {
      await gw?.close()
      await proxy.close()
      await redis.close()
    }
  }, 60_000)
})

describe('metricsPort: /metrics and /stats on a port of their own, per pm2 instance', () => {
  it('takes its pm2 instance index from NODE_APP_INSTANCE, 0 outside pm2', () => {
    expect(instanceIndex({ NODE_APP_INSTANCE: '3' })).toBe(3)
    expect(instanceIndex({})).toBe(0)
    expect(instanceIndex({ NODE_APP_INSTANCE: 'x' })).toBe(0)
  })

  it('serves the same numbers as the HTTP port, under the same auth rule and Host check', async () => {
    const SECRET = 'metrics-port-secret'
    const port = await freePort()
    const gw = await startGateway({ metricsPort: port, jwtSecret: SECRET })
    try {
      expect(await gw.app.metricsListener?.listen('127.0.0.1')).toBe(port)
      const side = `http://127.0.0.1:${port}`
      expect((await fetch(`${side}/metrics`)).status).toBe(401)
      expect((await fetch(`${side}/stats`)).status).toBe(401)
      const wide = await mintToken(['--sub', 'u', '--subscribe', '#', '--secret', SECRET], {})
      expect((await fetch(`${side}/metrics`, { headers: { authorization: `Bearer ${wide}` } })).status).toBe(403)
      const ops = await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--call', '*', '--secret', SECRET], {})
      const auth = { headers: { authorization: `Bearer ${ops}` } }
      expect((await call(gw, 'nobody', auth)).status).toBe(404)
      const m = await scrape(side, ops)
      expect(m.value('rtw_requests_total', { service: 'nobody', status: '404', transport: 'rest' })).toBe(1)
      const stats = await (await fetch(`${side}/stats`, auth)).json() as { requests: Record<string, Record<string, number>> }
      expect(stats.requests.nobody?.['404']).toBe(1)
      expect((await fetch(`${side}/api/echo/x`, auth)).status).toBe(404)
    } finally {
      await gw.close()
    }
  })

  it('refuses a Host that is not a loopback name when anonymous on loopback [P-11.10]', async () => {
    const port = await freePort()
    const gw = await startGateway({ metricsPort: port })
    try {
      await gw.app.metricsListener?.listen('127.0.0.1')
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200)
      const rebound = await new Promise<number>((resolve, reject) => {
        httpGet({ host: '127.0.0.1', port, path: '/stats', headers: { host: 'evil.example:80' } }, res => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
      })
      expect(rebound).toBe(421)
    } finally {
      await gw.close()
    }
  })
})
