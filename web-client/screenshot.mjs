// Regenerates web-client/demo/screenshot.png (the README's picture of the demo):
// starts a gateway (on 8080 when free) and an echo responder, drives the page in
// chromium, and saves a full-page screenshot. Run after `npm run build`:
//   node web-client/screenshot.mjs [out.png] [width]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { chromium } from 'playwright-core'
import { buildApp } from '../dist/gateway/app.js'
import { loadConfig } from '../dist/gateway/config.js'
import { echo } from '../dist/echo-server/echo.js'

const out = process.argv[2] ?? new URL('demo/screenshot.png', import.meta.url).pathname
const width = Number(process.argv[3] ?? 1280)

const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, logLevel: 'silent' } })
const app = await buildApp(config)
// The page prints its own origin in its terminal examples: show the default port when it is free.
try {
  await app.listen({ port: 8080, host: config.host })
} catch {
  await app.listen({ port: 0, host: config.host })
}
const { port: mqttPort } = await app.broker.listenTcp(0, config.host)
const origin = `http://${config.host}:${app.server.address().port}`

const responder = await mqtt.connectAsync(`mqtt://${config.host}:${mqttPort}`)
await responder.subscribeAsync('$req/echo/#', { qos: 1 })
responder.on('message', (topic, payload) => {
  const reply = echo(topic, payload)
  if (reply !== null) responder.publish(reply.topic, reply.payload)
})

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
  await page.screenshot({ path: out, fullPage: true })
  console.log(`screenshot: ${out}`)
} finally {
  await context.close()
  rmSync(profile, { recursive: true, force: true })
  await responder.endAsync()
  await app.close()
}
