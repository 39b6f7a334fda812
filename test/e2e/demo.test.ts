// The demo page in a real browser (Debian chromium driven by playwright-core):
// it connects by itself over MQTT-over-WebSocket, makes requests over both
// routes, shows the gateway's error codes, follows a live feed fed by
// mosquitto_pub, and reconnects after a gateway restart without a reload.
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEchoResponder } from '../helpers/web-client.js'

const run = promisify(execFile)
const CHROMIUM = process.env.RTW_CHROMIUM ?? '/usr/bin/chromium'
const ROOT = new URL('../../', import.meta.url).pathname

describe('demo page in chromium', () => {
  let gw: TestGateway
  let responder: MqttClient
  let context: BrowserContext
  let page: Page
  let profile: string
  /** Console errors no test expected; each test may allow the browser's own network messages it causes. */
  const unexpected: string[] = []
  let allowed: RegExp[] = []
  const sockets: string[] = []

  beforeAll(async () => {
    // The page loads /client/realtime-web.js: build it from the current source.
    execFileSync(process.execPath, [join(ROOT, 'web-client/build.mjs')], { stdio: 'ignore' })
    gw = await startGateway()
    responder = await startEchoResponder(gw.mqttUrl)
    profile = mkdtempSync(join(tmpdir(), 'rtw-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 }
    })
    page = context.pages()[0] ?? await context.newPage()
    page.setDefaultTimeout(15_000)
    page.on('console', msg => {
      if (process.env.RTW_E2E_CONSOLE === '1') console.log(`[browser ${msg.type()}] ${msg.text()}`)
      if (msg.type() !== 'error') return
      const text = `${msg.text()} @ ${msg.location().url}`
      if (!allowed.some(re => re.test(text))) unexpected.push(text)
    })
    page.on('pageerror', err => unexpected.push(`uncaught: ${err.message}`))
    page.on('websocket', ws => sockets.push(ws.url()))
  })

  afterEach(() => {
    expect(unexpected.splice(0), 'console errors').toEqual([])
    allowed = []
  })

  afterAll(async () => {
    await context?.close()
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
    await responder?.endAsync()
    await gw?.close()
  })

  async function send (service: string, path: string, via: 'mqtt' | 'rest', body: string, method = 'POST'): Promise<void> {
    await page.fill('#req-service', service)
    await page.fill('#req-path', path)
    await page.selectOption('#req-method', method)
    await page.fill('#req-body', body)
    await page.check(`input[name=via][value=${via}]`)
    await page.click('#req-send')
    // The reply is on the page once the button is enabled again and the meta line names the route.
    await page.waitForFunction(v => !(document.getElementById('req-send') as HTMLButtonElement).disabled &&
      document.getElementById('response')?.dataset.state !== 'pending' &&
      (document.getElementById('response-meta')?.textContent ?? '').includes(`via ${v}`), via.toUpperCase())
  }

  const text = (selector: string): Promise<string> => page.locator(selector).innerText()

  async function feedShows (needle: string): Promise<void> {
    await page.locator('#feed li', { hasText: needle }).first().waitFor()
  }

  async function mosquittoPub (port: number, topic: string, message: string): Promise<void> {
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', message])
  }

  it('loads and connects by itself over MQTT-over-WebSocket at /mqtt', async () => {
    const workers: string[] = []
    page.on('worker', w => workers.push(w.url()))
    const res = await page.goto(gw.httpUrl + '/')
    expect(res?.status()).toBe(200)
    await page.waitForSelector('#status[data-state=connected]')
    await page.waitForSelector('#feed-state[data-state=live]')
    expect(await text('#status-text')).toBe('Connected')
    expect(sockets).toEqual([`ws://${new URL(gw.httpUrl).host}/mqtt`])
    // Timers run in a worker so that background tabs keep their keepalive.
    expect(workers.some(u => u.startsWith('blob:'))).toBe(true)
  })

  for (const via of ['mqtt', 'rest'] as const) {
    it(`sends a request to the echo service via ${via} and shows the reply`, async () => {
      await send('echo', `/e2e/${via}`, via, `{"hello": "${via}"}`)
      expect(await page.getAttribute('#response', 'data-state')).toBe('ok')
      expect(await text('#response-status')).toBe('200')
      expect(await text('#response-meta')).toMatch(new RegExp(`via ${via.toUpperCase()} · [\\d.]+ ms round trip`))
      expect(JSON.parse(await text('#response-body'))).toEqual({ hello: via })
      const headers = await text('#response-headers')
      expect(headers).toContain('x-echo-path')
      expect(headers).toContain(`/e2e/${via}`)
      expect(headers).toMatch(/content-type\s+application\/json/)
    })
  }

  it('shows a message published by mosquitto_pub in the live feed', async () => {
    await mosquittoPub(gw.mqttPort, 'demo/e2e', 'hello from mosquitto_pub')
    await feedShows('hello from mosquitto_pub')
    expect(await page.locator('#feed li').first().innerText()).toContain('demo/e2e')
  })

  it('publishes from the publish form into its own live feed', async () => {
    await page.fill('#pub-topic', 'demo/form')
    await page.fill('#pub-payload', 'published by the page')
    await page.click('#publish-form button[type=submit]')
    await feedShows('published by the page')
    await page.locator('#publish-result', { hasText: 'acknowledged' }).waitFor()
  })

  for (const via of ['mqtt', 'rest'] as const) {
    it(`shows the gateway's error code for an invalid target via ${via}`, async () => {
      // fetch() answered 4xx makes chromium itself log "Failed to load resource"; that is the browser, not the page.
      allowed = [/Failed to load resource: the server responded with a status of 40[04]/]
      await send('nobody', '/x', via, 'x')
      expect(await page.getAttribute('#response', 'data-state')).toBe('error')
      expect(await text('#response-code')).toBe('RTW_NO_RESPONDER')
      expect(await text('#response-status')).toBe('404')

      await send('bad$service', '/x', via, 'x')
      expect(await text('#response-code')).toBe('RTW_BAD_TARGET')
      expect(await text('#response-status')).toBe('400')
    })
  }

  it('keeps the connection alive with PINGREQs timed by the worker', async () => {
    const pinged = (id: Promise<string>): Promise<void> => new Promise(resolve => {
      const onPing = (_packet: unknown, client: { id: string }): void => {
        void id.then(mine => {
          if (client.id !== mine) return
          gw.app.broker.aedes.off('ping', onPing)
          resolve()
        })
      }
      gw.app.broker.aedes.on('ping', onPing)
    })
    // A second client in the page, with a 1 s keepalive instead of the demo's 25 s.
    const id = page.evaluate(`(async () => {
      const { connect } = await import('/client/realtime-web.js')
      window.pinger = connect({ keepalive: 1 })
      await window.pinger.whenConnected()
      return window.pinger.clientId
    })()`) as Promise<string>
    await pinged(id)
    expect(await page.evaluate('window.pinger.state')).toBe('connected')
    await page.evaluate('window.pinger.close()')
  })

  it('reconnects after a gateway restart and the live feed resumes, without a reload', async () => {
    // While the gateway is down, chromium logs each refused WebSocket attempt itself.
    allowed = [/WebSocket connection to .* failed/]
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42 })
    const port = gw.httpPort
    await responder.endAsync()
    await gw.close()
    await page.waitForSelector('#status[data-state=disconnected]')
    expect(await text('#status-text')).toBe('Reconnecting')

    gw = await startGateway({ httpPort: port })
    responder = await startEchoResponder(gw.mqttUrl)
    await page.waitForSelector('#status[data-state=connected]', { timeout: 30_000 })
    await page.waitForSelector('#feed-state[data-state=live]')
    await mosquittoPub(gw.mqttPort, 'demo/after-restart', 'the feed is live again')
    await feedShows('the feed is live again')
    await send('echo', '/after-restart', 'mqtt', 'still works')
    expect(await text('#response-body')).toBe('still works')
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42)
  })
})
