// $SYS topics as existing tools see them: `mosquitto_sub -t '$SYS/#' -v` shows
// Mosquitto's $SYS/broker/… names and the gateway's $SYS/rtw/…, retained and
// refreshed every sysIntervalS, with numbers that follow the traffic; with
// auth on, only a token whose subscribe grants cover them may read them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { connectClient, grantedQos, nextMessage } from '../helpers/mqtt.js'
import { latestSys, startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'

const MOSQUITTO_TOPICS = [
  '$SYS/broker/version', '$SYS/broker/uptime', '$SYS/broker/clients/connected', '$SYS/broker/messages/received',
  '$SYS/broker/messages/sent', '$SYS/broker/load/messages/received/1min', '$SYS/broker/subscriptions/count'
]
const RTW_TOPICS = ['$SYS/rtw/requests/total', '$SYS/rtw/requests/in-flight', '$SYS/rtw/latency/p50', '$SYS/rtw/latency/p99', '$SYS/rtw/connections/tcp', '$SYS/rtw/stats']

describe('$SYS topics', () => {
  let gw: TestGateway
  let echo: Responder
  let sub: TestProcess
  beforeAll(async () => {
    gw = await startGateway({ sysIntervalS: 1 })
    echo = await startEcho(gw.mqttUrl)
    sub = startProcess('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', 'mqttv311', '-t', '$SYS/#', '-v'])
  })
  afterAll(async () => {
    await sub?.killGroup()
    await echo?.close()
    await gw?.close()
  })

  it('shows Mosquitto\'s $SYS/broker names and the gateway\'s $SYS/rtw ones to mosquitto_sub', async () => {
    const values = await waitFor(() => {
      const v = latestSys(sub.output())
      // Retained values from before the echo responder and mosquitto_sub came arrive first; then a fresh set.
      return [...MOSQUITTO_TOPICS, ...RTW_TOPICS].every(t => v.has(t)) && Number(v.get('$SYS/broker/clients/connected')) >= 2 ? v : undefined
    }, { what: 'every $SYS topic in mosquitto_sub\'s output, counting both clients' })
    expect(values.get('$SYS/broker/version')).toMatch(/^RealTime-Web \d+\.\d+\.\d+/)
    expect(values.get('$SYS/broker/uptime')).toMatch(/^\d+ seconds$/)
    expect(Number(values.get('$SYS/broker/subscriptions/count'))).toBeGreaterThanOrEqual(2)
    expect(JSON.parse(values.get('$SYS/rtw/stats') as string)).toMatchObject({ connections: { tcp: expect.any(Number), ws: 0 }, up: { amqp: false } })
  })

  it('follows the traffic: request counts, in-flight, latency and message counts move', async () => {
    const before = Number(latestSys(sub.output()).get('$SYS/rtw/requests/total'))
    for (let i = 0; i < 10; i++) expect((await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'hi' })).status).toBe(200)
    const values = await waitFor(() => {
      const v = latestSys(sub.output())
      return Number(v.get('$SYS/rtw/requests/total')) >= before + 10 ? v : undefined
    }, { what: 'the request count to include the 10 calls' })
    const stats = JSON.parse(values.get('$SYS/rtw/stats') as string) as { requests: Record<string, Record<string, number>>, messages: { received: number } }
    expect(stats.requests.echo?.['200']).toBeGreaterThanOrEqual(10)
    expect(stats.messages.received).toBeGreaterThanOrEqual(10)
    expect(Number(values.get('$SYS/broker/messages/received'))).toBeGreaterThanOrEqual(10)
    // The interval with the calls in it had a latency; it is in ms.
    expect(sub.output()).toMatch(/^\$SYS\/rtw\/latency\/p99 \d+(\.\d+)?$/m)
  })

  it('reaches no subscriber of "#" or "+/…", retained or live [MQTT-4.7.2-1]', async () => {
    // Retained $SYS values exist by now.
    await waitFor(() => latestSys(sub.output()).has('$SYS/rtw/stats'), { what: 'a first $SYS set' })
    const wild = await connectClient(gw.mqttUrl)
    try {
      const topics: string[] = []
      wild.on('message', topic => topics.push(topic))
      await wild.subscribeAsync(['#', '+/broker/#'])
      await wild.publishAsync('plain/marker', 'x', { qos: 1 })
      // Past the marker and past another $SYS interval, nothing from $SYS arrived.
      const seen = Number(latestSys(sub.output()).get('$SYS/broker/uptime')?.split(' ')[0])
      await waitFor(() => Number(latestSys(sub.output()).get('$SYS/broker/uptime')?.split(' ')[0]) > seen + 1, { what: 'two more $SYS intervals' })
      expect(topics).toContain('plain/marker')
      expect(topics.filter(t => t.startsWith('$'))).toEqual([])
    } finally {
      await wild.endAsync()
    }
  })

  it('keeps the latest values retained for a subscriber that comes later', async () => {
    const late = await connectClient(gw.mqttUrl)
    try {
      const got = nextMessage(late, topic => topic === '$SYS/broker/version')
      await late.subscribeAsync('$SYS/broker/version')
      const msg = await got
      expect(msg.retain).toBe(true)
      expect(msg.payload.toString()).toMatch(/^RealTime-Web/)
    } finally {
      await late.endAsync()
    }
  })
})

describe('$SYS topics with auth on', () => {
  const SECRET = 'sys-test-secret'
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET, sysIntervalS: 1 }) })
  afterAll(async () => { await gw?.close() })

  it('are read only with a subscribe grant that covers them; "#" does not', async () => {
    const plain = await connectClient(gw.mqttUrl, { username: 'u', password: await mintToken(['--sub', 'u', '--subscribe', '#', '--secret', SECRET], {}) })
    const ops = await connectClient(gw.mqttUrl, { username: 'ops', password: await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--secret', SECRET], {}) })
    try {
      expect(await grantedQos(plain, '$SYS/#', 0)).toEqual([128])
      const got = nextMessage(ops, topic => topic === '$SYS/rtw/stats')
      expect(await grantedQos(ops, '$SYS/#', 0)).toEqual([0])
      expect(JSON.parse((await got).payload.toString())).toHaveProperty('requests')
    } finally {
      await plain.endAsync()
      await ops.endAsync()
    }
  })
})
