// GET /events in a real browser: chromium's own EventSource follows a stream,
// loses it, reconnects with Last-Event-ID and gets what it missed, once each,
// in order. And the web client with WebSocket made to fail: it falls back to
// EventSource and fetch, and the demo page's requests, publishes and live feed
// still work, saying which transport carries them.
import { execFileSync } from 'node:child_process'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { launchChromium, type TestBrowser } from '../helpers/browser.js'
import { startEchoResponder } from '../helpers/web-client.js'

const ROOT = new URL('../../', import.meta.url).pathname

describe('GET /events in chromium', () => {
  let gw: TestGateway
  let browser: TestBrowser
  let responder: MqttClient
  const sockets = new Set<Socket>()
  const publish = async (topic: string, payload: string): Promise<void> => {
    const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic, payload }) })
    expect(res.status).toBeLessThan(300)
  }

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'web-client/build.mjs')], { stdio: 'ignore' })
    gw = await startGateway({ sseRetryMs: 200 })
    gw.app.server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
    responder = await startEchoResponder(gw.mqttUrl)
    browser = await launchChromium()
  })
  afterEach(() => {
    expect(browser.errors.splice(0), 'console errors').toEqual([])
    browser.allow = []
  })
  afterAll(async () => {
    await browser?.close()
    await responder?.endAsync()
    await gw?.close()
  })

  it('EventSource gets live messages, and after a drop exactly what it missed, in order', async () => {
    const { page } = browser
    // The browser's own: a page without a favicon; a stream cut mid-way.
    browser.allow = [/favicon\.ico/, /ERR_INCOMPLETE_CHUNKED_ENCODING/, /net::ERR_FAILED/]
    await page.goto(gw.httpUrl + '/healthz')
    await page.evaluate(() => {
      const w = window as unknown as { got: string[], opens: number, es: EventSource }
      w.got = []
      w.opens = 0
      w.es = new EventSource('/events?topic=' + encodeURIComponent('e2e/#'))
      w.es.onopen = () => { w.opens++ }
      w.es.onmessage = ev => { w.got.push((JSON.parse(ev.data) as { payload: string }).payload) }
    })
    await page.waitForFunction(() => (window as unknown as { opens: number }).opens === 1)
    await publish('e2e/a', '1')
    await publish('e2e/b', '2')
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 2)

    // Keep it from reconnecting, then cut the stream from the gateway's side.
    await page.route('**/events?*', route => route.abort())
    for (const s of sockets) s.destroy()
    await page.waitForFunction(() => (window as unknown as { es: EventSource }).es.readyState === 0)
    await publish('e2e/a', '3')
    await publish('e2e/b', '4')
    await publish('e2e/a', '5')
    await page.unroute('**/events?*')
    await page.waitForFunction(() => (window as unknown as { opens: number }).opens === 2, undefined, { timeout: 20_000 })
    await publish('e2e/a', '6')
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length >= 6)
    expect(await page.evaluate(() => (window as unknown as { got: string[] }).got)).toEqual(['1', '2', '3', '4', '5', '6'])
    await page.evaluate(() => { (window as unknown as { es: EventSource }).es.close() })
  })

  it('the demo page falls back to EventSource and fetch when /mqtt fails: requests, publishes and live updates work', async () => {
    const { page } = browser
    browser.allow = [/WebSocket/, /realtime-web/]
    // Every WebSocket to /mqtt is closed before MQTT can speak: a proxy that refuses upgrades.
    await page.routeWebSocket('**/mqtt', ws => { ws.close({ code: 1011, reason: 'blocked by the test' }) })
    await page.goto(gw.httpUrl + '/')
    await page.waitForSelector('#status[data-state=connected][data-transport=sse]')
    expect(await page.locator('#status-detail').innerText()).toContain('EventSource')
    await page.waitForSelector('#feed-state[data-state=live]')

    // A request: over fetch, whichever route the form asks for.
    await page.fill('#req-service', 'echo')
    await page.fill('#req-path', '/fallback')
    await page.selectOption('#req-method', 'POST')
    await page.fill('#req-body', 'over fetch')
    await page.check('input[name=via][value=mqtt]')
    await page.click('#req-send')
    await page.waitForFunction(() => document.getElementById('response')?.dataset.state === 'ok')
    expect(await page.locator('#response-body').innerText()).toBe('over fetch')

    // A publish from the page, and one from outside, both into the live feed.
    await page.fill('#pub-topic', 'demo/fallback')
    await page.fill('#pub-payload', 'published over fetch')
    await page.click('#publish-form button[type=submit]')
    await page.locator('#feed li', { hasText: 'published over fetch' }).first().waitFor()
    await publish('demo/outside', 'live over EventSource')
    await page.locator('#feed li', { hasText: 'live over EventSource' }).first().waitFor()
    expect(await page.evaluate('window.rtw.transport')).toBe('sse')
  })
})
