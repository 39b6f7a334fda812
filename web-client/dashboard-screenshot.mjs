/* global fetch */
// Regenerates web-client/dashboard/screenshot.png (the README's picture of the
// dashboard): a gateway publishing $SYS every second, an echo responder and a
// slower "billing" one, a minute of varying REST and MQTT traffic, then a
// full-page screenshot of /dashboard?window=60. Run after `npm run build`:
//   node web-client/dashboard-screenshot.mjs [out.png]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { chromium } from 'playwright-core'
import { buildApp } from '../dist/gateway/app.js'
import { loadConfig } from '../dist/gateway/config.js'
import { echo } from '../dist/echo-server/echo.js'

const out = process.argv[2] ?? new URL('dashboard/screenshot.png', import.meta.url).pathname
const seconds = Number(process.env.SHOT_SECONDS ?? 60)

const { config } = loadConfig({ overrides: { httpPort: 0, mqttPort: 0, logLevel: 'silent', sysIntervalS: 1 } })
const app = await buildApp(config)
await app.listen({ port: 0, host: config.host })
const { port: mqttPort } = await app.broker.listenTcp(0, config.host)
const origin = `http://${config.host}:${app.server.address().port}`

const responder = await mqtt.connectAsync(`mqtt://${config.host}:${mqttPort}`)
await responder.subscribeAsync(['$req/echo/#', '$req/billing/#'], { qos: 0 })
responder.on('message', (topic, payload) => {
  const reply = echo(topic, payload)
  if (reply === null) return
  if (topic.startsWith('$req/billing/')) setTimeout(() => responder.publish(reply.topic, reply.payload), 5 + Math.random() * 20)
  else responder.publish(reply.topic, reply.payload)
})
const feed = await mqtt.connectAsync(`ws://${config.host}:${app.server.address().port}/mqtt`)
await feed.subscribeAsync('sensors/#')

const profile = mkdtempSync(join(tmpdir(), 'rtw-shot-'))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.RTW_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  colorScheme: 'light'
})
try {
  const page = context.pages()[0] ?? await context.newPage()
  await page.goto(origin + '/dashboard?window=60')
  const until = Date.now() + seconds * 1000
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
  await page.screenshot({ path: out, fullPage: true })
  console.log(`screenshot: ${out}`)
} finally {
  await context.close()
  rmSync(profile, { recursive: true, force: true })
  await responder.endAsync()
  await feed.endAsync()
  await app.close()
}
