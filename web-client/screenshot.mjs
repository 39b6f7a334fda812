/* global fetch */
// Regenerates the README's pictures of the gateway's pages:
//   node web-client/screenshot.mjs demo [out.png] [width]       web-client/demo/screenshot.png
//   node web-client/screenshot.mjs dashboard [out.png] [width]  web-client/dashboard/screenshot.png
// Starts an in-process gateway and an echo responder (also answering a slower
// "billing" service), drives the page in chromium, and saves a full-page
// screenshot. Run after `npm run build`. The dashboard gets SHOT_SECONDS (60)
// of varying REST and MQTT traffic first, drawn at /dashboard?window=60.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { chromium } from 'playwright-core'
import { buildApp } from '../dist/gateway/app.js'
import { loadConfig } from '../dist/gateway/config.js'
import { echo } from '../dist/echo-server/echo.js'

const PAGES = {
  async demo (page, origin) {
    await page.goto(origin + '/')
    await page.waitForSelector('#status[data-state=connected]')
    await page.waitForSelector('#feed-state[data-state=live]')
    await page.click('#req-send')
    await page.waitForSelector('#response[data-state=ok]')
    for (const [topic, payload] of [['demo/hello', 'Hello, live world'], ['demo/sensors/kitchen', '{"temperature": 21.5, "unit": "C"}']]) {
      await page.fill('#pub-topic', topic)
      await page.fill('#pub-payload', payload)
      await page.click('#publish-form button[type=submit]')
      await page.locator('#feed li', { hasText: payload }).waitFor()
    }
    await page.locator('#publish-result', { hasText: 'acknowledged' }).waitFor()
  },
  async dashboard (page, origin, responder) {
    await page.goto(origin + '/dashboard?window=60')
    const until = Date.now() + Number(process.env.SHOT_SECONDS ?? 60) * 1000
    const call = async (service, path) => { await (await fetch(`${origin}/api/${service}${path}`, { method: 'POST', body: 'x' })).arrayBuffer() }
    while (Date.now() < until) {
      // A load that swells and ebbs, with a few calls nobody serves (404).
      const phase = Math.sin((until - Date.now()) / 9000) + 1.2
      const batch = []
      for (let i = 0; i < Math.round(20 * phase); i++) batch.push(call('echo', '/x'))
      for (let i = 0; i < Math.round(6 * phase); i++) batch.push(call('billing', '/invoice'))
      if (Math.random() < 0.3) batch.push(call('nobody', '/x'))
      responder.publish('sensors/kitchen', JSON.stringify({ celsius: 21 + Math.random() }))
      await Promise.all(batch)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

const name = process.argv[2] ?? 'demo'
const drive = PAGES[name]
if (drive === undefined) throw new Error(`usage: node web-client/screenshot.mjs ${Object.keys(PAGES).join('|')} [out.png] [width]`)
const out = process.argv[3] ?? new URL(`${name}/screenshot.png`, import.meta.url).pathname
const width = Number(process.argv[4] ?? 1280)

const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, logLevel: 'silent', sysIntervalS: 1 } })
const app = await buildApp(config)
// The demo prints its own origin in its terminal examples: show the default port when it is free.
try {
  await app.listen({ port: name === 'demo' ? 8080 : 0, host: config.host })
} catch {
  await app.listen({ port: 0, host: config.host })
}
const { port: mqttPort } = await app.broker.listenTcp(0, config.host)
const origin = `http://${config.host}:${app.server.address().port}`

const responder = await mqtt.connectAsync(`mqtt://${config.host}:${mqttPort}`)
await responder.subscribeAsync(['$req/echo/#', '$req/billing/#'], { qos: 1 })
responder.on('message', (topic, payload) => {
  const reply = echo(topic, payload)
  if (reply === null) return
  if (topic.startsWith('$req/billing/')) setTimeout(() => responder.publish(reply.topic, reply.payload), 5 + Math.random() * 20)
  else responder.publish(reply.topic, reply.payload)
})
// A WebSocket client, so that the dashboard's connections chart has both transports.
const feed = await mqtt.connectAsync(`ws://${config.host}:${app.server.address().port}/mqtt`)
await feed.subscribeAsync('sensors/#')

const profile = mkdtempSync(join(tmpdir(), 'rtw-shot-'))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.RTW_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width, height: 900 },
  colorScheme: process.env.RTW_COLOR_SCHEME ?? 'light'
})
try {
  const page = context.pages()[0] ?? await context.newPage()
  await drive(page, origin, responder)
  await page.screenshot({ path: out, fullPage: true })
  console.log(`screenshot: ${out}`)
} finally {
  await context.close()
  rmSync(profile, { recursive: true, force: true })
  await responder.endAsync()
  await feed.endAsync()
  await app.close()
}
