// The $SYS payloads from readings (pure): rates over the interval, Mosquitto's
// load averages, and latency quantiles from the histogram's buckets.
import { describe, expect, it } from 'vitest'
import { SysTopics, nodePrefixes, type Reading } from '../../gateway/metrics/sys-topics.js'
import { decodeReading, encodeReading, isSysLeader, sumReadings } from '../../gateway/metrics/cluster-readings.js'
import { DURATION_BUCKETS, quantile } from '../../gateway/metrics/registry.js'

const bounds = [...DURATION_BUCKETS, Infinity]
const cumulative = (counts: Record<number, number>): number[] => {
  let run = 0
  return bounds.map(b => { run += counts[b] ?? 0; return run })
}

function reading (over: Partial<Reading>): Reading {
  return {
    at: 0, uptimeS: 0, clients: 0, connections: { tcp: 0, ws: 0 }, subscriptions: 0, received: 0, sent: 0,
    dropped: {}, inFlight: 0, requests: {}, latency: { bounds, cumulative: cumulative({}) }, up: { amqp: false }, ...over
  }
}

describe('quantile', () => {
  it('interpolates inside the bucket, as histogram_quantile does, over the interval only', () => {
    // 100 requests in (0.001, 0.0025]: the median sits in the middle of that bucket.
    const after = cumulative({ 0.0025: 100 })
    expect(quantile(0.5, bounds, cumulative({}), after)).toBeCloseTo(0.00175, 6)
    // 90 fast, 10 slow: p99 falls in the slow bucket (1, 2.5].
    const mixed = cumulative({ 0.0005: 90, 2.5: 10 })
    expect(quantile(0.99, bounds, cumulative({}), mixed)).toBeGreaterThan(1)
    expect(quantile(0.5, bounds, cumulative({}), mixed)).toBeLessThanOrEqual(0.0005)
    // Nothing in the interval: no value rather than a stale one.
    expect(quantile(0.5, bounds, mixed, mixed)).toBeNull()
  })
})

describe('SysTopics', () => {
  it('publishes per-second rates and per-minute load averages that follow the counts', () => {
    const sys = new SysTopics('RealTime-Web 9.9.9')
    const first = sys.next(reading({ at: 0, received: 0, sent: 0 }))
    expect(first.stats.rates).toEqual({ received: 0, sent: 0, requests: 0 })
    const topics = new Map(first.messages)
    expect(topics.get('$SYS/broker/version')).toBe('RealTime-Web 9.9.9')
    expect(topics.get('$SYS/rtw/latency/p50')).toBe('n/a')
    // 10 s later: 100 received (10/s = 600/min), 50 requests to echo.
    const second = sys.next(reading({ at: 10_000, uptimeS: 10, received: 100, sent: 200, requests: { echo: { 200: 50 } }, latency: { bounds, cumulative: cumulative({ 0.001: 50 }) } }))
    expect(second.stats.rates).toEqual({ received: 10, sent: 20, requests: 5 })
    const t = new Map(second.messages)
    expect(t.get('$SYS/broker/uptime')).toBe('10 seconds')
    expect(t.get('$SYS/rtw/requests/total')).toBe('50')
    expect(Number(t.get('$SYS/rtw/latency/p50'))).toBeGreaterThan(0.5)
    expect(Number(t.get('$SYS/rtw/latency/p50'))).toBeLessThanOrEqual(1)
    // The 1-minute average moves towards 600/min faster than the 15-minute one.
    const one = Number(t.get('$SYS/broker/load/messages/received/1min'))
    const fifteen = Number(t.get('$SYS/broker/load/messages/received/15min'))
    expect(one).toBeGreaterThan(fifteen)
    expect(one).toBeLessThan(600)
    expect(JSON.parse(t.get('$SYS/rtw/stats') as string)).toMatchObject({ intervalS: 10, requests: { echo: { 200: 50 } }, rates: { requests: 5 } })
  })
})

describe('a cluster\'s $SYS [P-12.10]', () => {
  it('names a node\'s own topics $SYS/brokers/<node>/…, as EMQX does', () => {
    const topics = new Map(new SysTopics('v', nodePrefixes('n1')).next(reading({ clients: 3 })).messages)
    expect(topics.get('$SYS/brokers/n1/clients/connected')).toBe('3')
    expect(topics.get('$SYS/brokers/n1/load/messages/received/1min')).toBe('0')
    expect(topics.has('$SYS/brokers/n1/rtw/stats')).toBe(true)
    expect([...topics.keys()].every(t => t.startsWith('$SYS/brokers/n1/'))).toBe(true)
  })

  it('adds the nodes\' readings up: counts and latency buckets sum, uptime is the oldest node\'s, a dependency is up only on every node', () => {
    const a = reading({ at: 5, uptimeS: 100, clients: 2, connections: { tcp: 2, ws: 0 }, received: 10, requests: { echo: { 200: 3 } }, dropped: { late: 1 }, latency: { bounds, cumulative: cumulative({ 0.001: 3 }) }, up: { amqp: true } })
    const b = reading({ at: 7, uptimeS: 40, clients: 5, connections: { tcp: 1, ws: 4 }, received: 1, requests: { echo: { 200: 1, 504: 2 }, x: { 404: 1 } }, dropped: { late: 2, unknown: 1 }, latency: { bounds, cumulative: cumulative({ 0.01: 1 }) }, up: { amqp: false } })
    const sum = sumReadings([a, b], ['a', 'b'])
    expect(sum).toMatchObject({ at: 7, uptimeS: 100, clients: 7, connections: { tcp: 3, ws: 4 }, received: 11, requests: { echo: { 200: 4, 504: 2 }, x: { 404: 1 } }, dropped: { late: 3, unknown: 1 }, up: { amqp: false }, nodes: ['a', 'b'] })
    expect(sum.latency.cumulative).toEqual(cumulative({ 0.001: 3, 0.01: 1 }))
    const stats = JSON.parse(new Map(new SysTopics('v').next(sum).messages).get('$SYS/rtw/stats') as string)
    expect(stats.nodes).toEqual(['a', 'b'])
  })

  it('stores a reading in JSON (no Infinity) and refuses what is not one', () => {
    const r = reading({ clients: 4, latency: { bounds, cumulative: cumulative({ 0.001: 2 }) } })
    const text = encodeReading(r)
    expect(text).not.toContain('null')
    expect(decodeReading(text, bounds)).toEqual(r)
    for (const bad of ['', 'null', '[]', '{"at":1}', text.replace('"clients":4', '"clients":"4"'), JSON.stringify({ ...JSON.parse(text), latency: { cumulative: [1] } })]) {
      expect(decodeReading(bad, bounds), bad).toBeNull()
    }
  })

  it('has one leader, the live node with the smallest id, whatever node asks', () => {
    const nodes = ['m2', 'a9', 'q1']
    const leaders = nodes.filter(n => isSysLeader(n, nodes.filter(o => o !== n)))
    expect(leaders).toEqual(['a9'])
    expect(isSysLeader('z', [])).toBe(true)
  })
})
