// GET /events over real sockets: headers, every publishing transport, curl,
// recovery across a drop, RTW-Recovered: false, heartbeats and retained values.
import { spawn } from 'node:child_process'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { connectClient } from '../helpers/mqtt.js'
import { openEvents, type SseReader } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'

const publish = async (gw: TestGateway, topic: string, payload: string, extra: Record<string, unknown> = {}): Promise<void> => {
  const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic, payload, ...extra }) })
  expect(res.status).toBeLessThan(300)
}

describe('GET /events', () => {
  let gw: TestGateway
  const open: SseReader[] = []
  const clients: MqttClient[] = []
  const events = async (query: string, headers: Record<string, string> = {}): Promise<SseReader> => {
    const r = await openEvents(`${gw.httpUrl}/events?${query}`, headers)
    open.push(r)
    return r
  }

  beforeAll(async () => {
    gw = await startGateway({ historySize: 5, sseHeartbeatMs: 200 })
  })
  afterEach(async () => {
    for (const r of open.splice(0)) r.close()
    await Promise.all(clients.splice(0).map(c => c.endAsync()))
  })
  afterAll(async () => { await gw.close() })

  it('answers text/event-stream with the proxy-proof headers and a retry hint', async () => {
    const r = await events('topic=h/1')
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(r.headers.get('cache-control')).toBe('no-cache')
    expect(r.headers.get('x-accel-buffering')).toBe('no')
    expect(r.headers.get('rtw-recovered')).toBeNull()
    await waitFor(() => r.retry === 2000, { what: 'retry: hint' })
    expect(r.lastEventId).toMatch(/^[0-9a-z]+-\d+$/)
  })

  it('delivers what MQTT over TCP, MQTT over WebSocket and POST /publish publish, each once', async () => {
    const r = await events('topic=t/%2B&topic=t/%23')
    await waitFor(() => r.lastEventId !== '', { what: 'stream start' })
    const tcp = await connectClient(gw.mqttUrl)
    const ws = await connectClient(gw.wsUrl)
    clients.push(tcp, ws)
    // One at a time: two publishers' messages have no order between them.
    await tcp.publishAsync('t/tcp', 'from tcp', { qos: 1 })
    await r.waitMessages(1)
    await ws.publishAsync('t/ws', 'from ws', { qos: 0 })
    await r.waitMessages(2)
    await publish(gw, 't/http', 'from http', { qos: 1 })
    await r.waitMessages(3)
    await tcp.publishAsync('t/bin', Buffer.from([0xff, 0x00, 0xfe]))
    await r.waitMessages(4)
    expect(r.messages()).toEqual([
      { topic: 't/tcp', payload: 'from tcp', qos: 1 },
      { topic: 't/ws', payload: 'from ws', qos: 0 },
      { topic: 't/http', payload: 'from http', qos: 1 },
      { topic: 't/bin', payload: Buffer.from([0xff, 0x00, 0xfe]).toString('base64'), encoding: 'base64', qos: 0 }
    ])
    // Each recorded message carries its position, increasing.
    const ids = r.events.filter(e => e.event === 'message').map(e => Number((e.id as string).split('-')[1]))
    expect([...ids].sort((a, b) => a - b)).toEqual(ids)
    expect(new Set(ids).size).toBe(4)
  })

  it('works with curl as written in the README', async () => {
    const curl = spawn('curl', ['-sN', `${gw.httpUrl}/events?topic=sensors/%23`])
    let out = ''
    curl.stdout.on('data', (d: Buffer) => { out += d.toString() })
    try {
      await waitFor(() => out.includes('retry:'), { what: 'curl to see the stream start' })
      await publish(gw, 'sensors/kitchen/temp', '21.5')
      await waitFor(() => out.includes('data: {"topic":"sensors/kitchen/temp","payload":"21.5","qos":0}'), { what: 'the event in curl output' })
      expect(out).toMatch(/id: [0-9a-z]+-\d+\ndata: \{"topic":"sensors\/kitchen\/temp"/)
    } finally {
      curl.kill()
    }
  })

  it('recovers what was published while the connection was down: every message once, in order', async () => {
    const r1 = await events('topic=rec/%23')
    await waitFor(() => r1.lastEventId !== '', { what: 'stream start' })
    await publish(gw, 'rec/a', '1')
    await publish(gw, 'rec/b', '2')
    await r1.waitMessages(2)
    const resume = r1.lastEventId
    r1.close()
    await waitFor(() => gw.app.sse.open() === 0, { what: 'the first stream to close' })
    // Published during the gap, on two topics; and one on a topic the stream does not hold.
    await publish(gw, 'rec/a', '3')
    await publish(gw, 'other/x', 'not for it')
    await publish(gw, 'rec/b', '4')
    await publish(gw, 'rec/a', '5')
    const r2 = await events('topic=rec/%23', { 'last-event-id': resume })
    expect(r2.headers.get('rtw-recovered')).toBe('true')
    await r2.waitMessages(3)
    // The same answer in the stream, for EventSource, which cannot read headers.
    const marker = r2.events.find(e => e.event === 'rtw-position')
    expect(JSON.parse(marker?.data ?? '{}')).toEqual({ position: marker?.id, recovered: true })
    await publish(gw, 'rec/b', '6')
    await r2.waitMessages(4)
    expect(r2.messages().map(m => m.payload)).toEqual(['3', '4', '5', '6'])
    // The replayed events keep their ids; the next reconnect resumes after the last.
    expect(r2.lastEventId).toBe(r2.events.at(-1)?.id)
  })

  it('recovers from lastEventID in the query, for clients that cannot set headers', async () => {
    const r1 = await events('topic=q/1')
    await waitFor(() => r1.lastEventId !== '', { what: 'stream start' })
    const resume = r1.lastEventId
    r1.close()
    await publish(gw, 'q/1', 'missed')
    const r2 = await events(`topic=q/1&lastEventID=${encodeURIComponent(resume)}`)
    expect(r2.headers.get('rtw-recovered')).toBe('true')
    await r2.waitMessages(1)
    expect(r2.messages()[0]?.payload).toBe('missed')
  })

  it('says RTW-Recovered: false for a position too old, or unknown, and then sends only live messages', async () => {
    const r1 = await events('topic=old/1')
    await waitFor(() => r1.lastEventId !== '', { what: 'stream start' })
    const resume = r1.lastEventId
    r1.close()
    // historySize is 5: the first of these seven are gone by the time the client comes back.
    for (let i = 0; i < 7; i++) await publish(gw, 'old/1', String(i))
    const r2 = await events('topic=old/1', { 'last-event-id': resume })
    expect(r2.headers.get('rtw-recovered')).toBe('false')
    const garbage = await events('topic=old/1', { 'last-event-id': 'not a position' })
    expect(garbage.headers.get('rtw-recovered')).toBe('false')
    const future = await events('topic=old/1', { 'last-event-id': resume.replace(/-\d+$/, '-999999999') })
    expect(future.headers.get('rtw-recovered')).toBe('false')
    await waitFor(() => r2.lastEventId !== resume, { what: 'stream start' })
    await publish(gw, 'old/1', 'live')
    await r2.waitMessages(1)
    expect(r2.messages().map(m => m.payload)).toEqual(['live'])
  })

  it('sends heartbeat comments on an idle stream', async () => {
    const r = await events('topic=idle/1')
    await waitFor(() => r.comments >= 3, { what: 'three heartbeats' })
    expect(r.messages()).toEqual([])
  })

  it('sends the retained value of each matching topic first with ?retained=1', async () => {
    await publish(gw, 'ret/a', 'A', { retain: true })
    await publish(gw, 'ret/b', 'B', { retain: true })
    const r = await events('topic=ret/%23&topic=ret/a&retained=1')
    await r.waitMessages(2)
    await publish(gw, 'ret/a', 'A2')
    await r.waitMessages(3)
    const msgs = r.messages()
    expect(msgs.slice(0, 2).sort((x, y) => x.topic.localeCompare(y.topic))).toEqual([
      { topic: 'ret/a', payload: 'A', qos: 0, retain: true },
      { topic: 'ret/b', payload: 'B', qos: 0, retain: true }
    ])
    expect(msgs[2]).toEqual({ topic: 'ret/a', payload: 'A2', qos: 0 })
  })

  it('refuses bad filters, too many filters and none, before any stream starts', async () => {
    const none = await events('')
    expect(none.status).toBe(400)
    expect(JSON.parse(none.text).error.code).toBe('RTW_BAD_REQUEST')
    const bad = await events('topic=a%2Bb')
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.text).error.code).toBe('RTW_BAD_TOPIC')
    const many = await events(Array.from({ length: 33 }, (_, i) => `topic=m/${i}`).join('&'))
    expect(many.status).toBe(400)
    for (const reserved of ['%24res/%23', '%24inbox/x/%23', '%24history/%23']) {
      const r = await events(`topic=${reserved}`)
      expect(r.status).toBe(403)
      expect(JSON.parse(r.text).error.code).toBe('RTW_FORBIDDEN')
    }
  })
})

describe('GET /events across a restart', () => {
  it('says RTW-Recovered: false when the epoch is gone', async () => {
    let gw = await startGateway()
    const r1 = await openEvents(`${gw.httpUrl}/events?topic=e/1`)
    await waitFor(() => r1.lastEventId !== '', { what: 'stream start' })
    await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'e/1', payload: 'x' }) })
    await r1.waitMessages(1)
    const resume = r1.lastEventId
    r1.close()
    await gw.close()
    gw = await startGateway()
    try {
      await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'e/1', payload: 'y' }) })
      const r2 = await openEvents(`${gw.httpUrl}/events?topic=e/1`, { 'last-event-id': resume })
      expect(r2.headers.get('rtw-recovered')).toBe('false')
      r2.close()
    } finally {
      await gw.close()
    }
  })
})

describe('GET /history', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ historySize: 3 }) })
  afterAll(async () => { await gw.close() })
  const get = async (query: string): Promise<{ status: number, body: { recovered: boolean, position: string, messages: Array<Record<string, unknown>> } }> => {
    const res = await fetch(`${gw.httpUrl}/history?${query}`)
    return { status: res.status, body: await res.json() as never }
  }

  it('answers the position without since, and what came after a position with it', async () => {
    const start = await get('topic=h/%23')
    expect(start.status).toBe(200)
    expect(start.body).toEqual({ recovered: false, position: expect.stringMatching(/^[0-9a-z]+-\d+$/), messages: [] })
    await publish(gw, 'h/a', 'one')
    await publish(gw, 'other', 'not matched')
    await publish(gw, 'h/b', 'two', { qos: 1 })
    const r = await get(`topic=h/%23&since=${start.body.position}`)
    expect(r.body.recovered).toBe(true)
    expect(r.body.messages.map(m => [m.topic, m.payload, m.qos])).toEqual([['h/a', 'one', 0], ['h/b', 'two', 1]])
    expect(r.body.position).toBe(r.body.messages[1]?.id)
  })

  it('answers recovered: false, and no messages, from a position too old or gone', async () => {
    const start = await get('topic=g/1')
    for (let i = 0; i < 5; i++) await publish(gw, 'g/1', String(i))
    const r = await get(`topic=g/1&since=${start.body.position}`)
    expect(r.body).toMatchObject({ recovered: false, messages: [] })
    expect((await get('topic=g/1&since=zzz-1')).body.recovered).toBe(false)
    expect((await get('topic=%24res/%23')).status).toBe(403)
  })
})
