// About 2,000 concurrent GET /events streams on one gateway, and a reader that
// stops reading: it is cut off as a slow consumer while every other stream
// goes on getting every message [P-15.7]. Bounded: 2,001 sockets on 127.0.0.1.
import { request, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

const STREAMS = 2000

interface Counted { res: IncomingMessage, started: boolean, data: number }

function openCounted (gw: TestGateway, topic: string): Promise<Counted> {
  return new Promise((resolve, reject) => {
    const req = request({ host: gw.config.host, port: gw.httpPort, path: `/events?topic=${encodeURIComponent(topic)}`, agent: false }, res => {
      const c: Counted = { res, started: false, data: 0 }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (chunk.includes('retry:')) c.started = true
        c.data += chunk.split('\ndata: ').length - 1 + (chunk.startsWith('data: ') ? 1 : 0)
      })
      resolve(c)
    })
    req.on('error', reject)
    req.end()
  })
}

describe(`${STREAMS} concurrent GET /events streams`, () => {
  let gw: TestGateway
  const streams: Counted[] = []
  let slow: Socket | undefined

  beforeAll(async () => {
    gw = await startGateway({ connectRate: 100_000, maxOutboundBytes: 256 * 1024, sseHeartbeatMs: 60_000 })
  })
  afterAll(async () => {
    for (const s of streams) s.res.destroy()
    slow?.destroy()
    await gw.close()
  })

  it('cuts off a reader that stops reading, and every other stream gets every message', async () => {
    for (let i = 0; i < STREAMS; i += 200) {
      streams.push(...await Promise.all(Array.from({ length: 200 }, async () => await openCounted(gw, 'load/#'))))
    }
    await waitFor(() => streams.every(s => s.started), { timeoutMs: 30_000, what: 'every stream to start' })
    expect(gw.app.sse.open()).toBe(STREAMS)

    // A client that sends its request and never reads a byte of the answer.
    slow = connect(gw.httpPort, gw.config.host)
    slow.pause()
    slow.write(`GET /events?topic=slow/x HTTP/1.1\r\nHost: ${gw.config.host}\r\n\r\n`)
    await waitFor(() => gw.app.sse.open() === STREAMS + 1, { what: 'the slow stream to open' })

    const big = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 1000 && gw.app.sse.counters.slowConsumers === 0; i++) {
      const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'slow/x', payload: big }) })
      expect(res.status).toBeLessThan(300)
    }
    expect(gw.app.sse.counters.slowConsumers).toBe(1)
    await waitFor(() => gw.app.sse.open() === STREAMS, { what: 'the slow stream to be gone' })

    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: `load/${i}`, payload: String(i) }) })
      expect(res.status).toBe(200)
    }
    await waitFor(() => streams.every(s => s.data === 5), { timeoutMs: 30_000, what: 'five messages on every stream' })
    expect(gw.app.sse.open()).toBe(STREAMS)
    expect(gw.app.sse.counters.slowConsumers).toBe(1)
  })
})
