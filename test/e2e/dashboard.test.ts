// The dashboard in Chromium: it gets its numbers over MQTT-over-WebSocket from
// $SYS/rtw/stats (no polling), and its charts move when traffic flows; with
// auth on it asks for a token, keeps it in sessionStorage, and then shows data.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEchoResponder } from '../helpers/web-client.js'
import { mintToken } from '../../gateway/cli/token.js'

const CHROMIUM = process.env.RTW_CHROMIUM ?? '/usr/bin/chromium'
const ROOT = new URL('../../', import.meta.url).pathname

async function browser (): Promise<{ context: BrowserContext, page: Page, done: () => Promise<void>, requests: string[] }> {
  const profile = mkdtempSync(join(tmpdir(), 'rtw-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 }
  })
  const page = context.pages()[0] ?? await context.newPage()
  page.setDefaultTimeout(20_000)
  const requests: string[] = []
  page.on('request', r => requests.push(r.url()))
  return { context, page, requests, done: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }) } }
}

/** The number a chart's legend shows for one series, or NaN while it shows none. */
async function legend (page: Page, chart: string, series: string): Promise<number> {
  const text = await page.locator(`[data-chart="${chart}"] li[data-series="${series}"] .value`).textContent({ timeout: 1000 }).catch(() => null)
  return text === null ? NaN : Number(text)
}

describe('dashboard in chromium', () => {
  let gw: TestGateway
  let responder: MqttClient
  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'web-client/build.mjs')], { stdio: 'ignore' })
    gw = await startGateway({ sysIntervalS: 1 })
    responder = await startEchoResponder(gw.mqttUrl)
  })
  afterAll(async () => {
    await responder?.endAsync()
    await gw?.close()
  })

  it('draws live numbers from $SYS over the WebSocket, and they move under traffic', async () => {
    const b = await browser()
    let traffic = true
    try {
      const sockets: string[] = []
      b.page.on('websocket', ws => sockets.push(ws.url()))
      await b.page.goto(`${gw.httpUrl}/dashboard`)
      await b.page.waitForFunction(() => Number(document.querySelector('[data-chart="connections"]')?.getAttribute('data-points')) >= 2)
      expect(sockets).toEqual([`ws://127.0.0.1:${gw.httpPort}/mqtt`])
      // Traffic until the charts show it; the page must notice without reloading.
      const load = (async () => {
        while (traffic) await (await fetch(`${gw.httpUrl}/api/echo/x`, { method: 'POST', body: 'hi' })).arrayBuffer()
      })()
      await b.page.waitForFunction(() => Number(document.querySelector('[data-chart="requests"] li[data-series="echo 200"] .value')?.textContent) > 0)
      expect(await legend(b.page, 'messages', 'received')).toBeGreaterThan(0)
      expect(await legend(b.page, 'messages', 'sent')).toBeGreaterThan(0)
      expect(await legend(b.page, 'latency', 'p99')).toBeGreaterThan(0)
      // The responder and the page itself are connected: tcp and ws.
      expect(await legend(b.page, 'connections', 'tcp')).toBeGreaterThanOrEqual(1)
      expect(await legend(b.page, 'connections', 'ws')).toBeGreaterThanOrEqual(1)
      expect(await legend(b.page, 'deps', 'amqp')).toBe(0)
      traffic = false
      await load
      // Quiet again: the request rate falls back to 0 in a later interval.
      await b.page.waitForFunction(() => document.querySelector('[data-chart="requests"] li[data-series="echo 200"] .value')?.textContent === '0')
      if (process.env.RTW_SCREENSHOT === '1') await b.page.screenshot({ path: join(ROOT, 'web-client/dashboard/screenshot.png'), fullPage: true })
      // Data came over the socket: after the page and its files, no request polled anything.
      expect(b.requests.filter(u => /\/(stats|metrics)\b/.test(u))).toEqual([])
    } finally {
      traffic = false
      await b.done()
    }
  })
})

describe('dashboard with auth on', () => {
  const SECRET = 'dashboard-test-secret'
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway({ jwtSecret: SECRET, sysIntervalS: 1 }) })
  afterAll(async () => { await gw?.close() })

  it('says a token is needed, and shows data once one with the $SYS grant is entered (kept in sessionStorage)', async () => {
    const b = await browser()
    try {
      await b.page.goto(`${gw.httpUrl}/dashboard`)
      await b.page.locator('#problem').waitFor({ state: 'visible' })
      expect(await b.page.locator('#problem').textContent()).toMatch(/token/)
      const token = await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--secret', SECRET], {})
      await b.page.fill('#token', token)
      await b.page.click('#token-form button')
      await b.page.waitForFunction(() => Number(document.querySelector('[data-chart="inflight"]')?.getAttribute('data-points')) >= 1)
      expect(await b.page.evaluate(() => sessionStorage.getItem('rtw-token'))).toBe(token)
      expect(await b.page.locator('#problem').isHidden()).toBe(true)
    } finally {
      await b.done()
    }
  })

  it('the demo page says auth is on, takes a token, keeps it in sessionStorage, and connects with it', async () => {
    const b = await browser()
    try {
      await b.page.goto(`${gw.httpUrl}/demo/`)
      await b.page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'closed')
      expect(await b.page.locator('#status-detail').textContent()).toMatch(/return code 5: the gateway has auth on; enter a token above/)
      const token = await mintToken(['--sub', 'me', '--subscribe', 'demo/#', '--secret', SECRET], {})
      await b.page.fill('#token', token)
      await b.page.click('#token-use')
      await b.page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'connected')
      expect(await b.page.evaluate(() => sessionStorage.getItem('rtw-token'))).toBe(token)
      // Still there after a reload of the same tab.
      await b.page.reload()
      await b.page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'connected')
      expect(await b.page.inputValue('#token')).toBe(token)
    } finally {
      await b.done()
    }
  })
})
