// Static files: the client bundle goes out precompressed (brotli or gzip) with
// an ETag and Cache-Control: no-cache, revalidated with 304; and a user's own
// page from staticDir, holding the README's inline-script example exactly as
// the README prints it, works in Chromium, with the demo page moved to /demo/.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext } from 'playwright-core'
import type { MqttClient } from 'mqtt'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startEchoResponder } from '../helpers/web-client.js'

const CHROMIUM = process.env.RTW_CHROMIUM ?? '/usr/bin/chromium'
const ROOT = new URL('../../', import.meta.url).pathname

/** A GET with exact request headers (fetch would decompress and add its own Accept-Encoding). */
async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  return await new Promise((resolve, reject) => {
    request(url, { headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    }).on('error', reject).end()
  })
}

/** The README's first ```html block: the inline-script example. */
function readmeSnippet (): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const m = /```html\n([\s\S]*?)```/.exec(readme)
  if (m === null) throw new Error('README has no html example')
  return m[1] as string
}

describe('static files', () => {
  let gw: TestGateway
  let responder: MqttClient
  let dir: string
  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'web-client/build.mjs')], { stdio: 'ignore' })
    dir = mkdtempSync(join(tmpdir(), 'rtw-static-'))
    writeFileSync(join(dir, 'index.html'), `<!doctype html>\n<title>mine</title>\n${readmeSnippet()}`)
    writeFileSync(join(dir, 'notes.txt'), 'my own file')
    gw = await startGateway({ staticDir: dir })
    responder = await startEchoResponder(gw.mqttUrl)
  })
  afterAll(async () => {
    await responder?.endAsync()
    await gw?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('sends the client bundle precompressed, as the encoding the browser accepts', async () => {
    const raw = readFileSync(join(ROOT, 'web-client/dist/realtime-web.js'))
    const br = await get(`${gw.httpUrl}/client/realtime-web.js`, { 'accept-encoding': 'gzip, deflate, br' })
    expect(br.status).toBe(200)
    expect(br.headers['content-encoding']).toBe('br')
    expect(br.body.length).toBeLessThan(raw.length / 2)
    expect(brotliDecompressSync(br.body).equals(raw)).toBe(true)
    const gz = await get(`${gw.httpUrl}/client/realtime-web.js`, { 'accept-encoding': 'gzip' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).equals(raw)).toBe(true)
    const plain = await get(`${gw.httpUrl}/client/realtime-web.js`)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.equals(raw)).toBe(true)
    expect(plain.headers['content-type']).toMatch(/javascript/)
  })

  it('marks files for revalidation with an ETag, and answers 304 when nothing changed', async () => {
    for (const path of ['/client/realtime-web.js', '/demo/', '/demo/demo.css', '/dashboard', '/', '/notes.txt']) {
      const first = await get(gw.httpUrl + path, { 'accept-encoding': 'gzip' })
      expect(first.status, path).toBe(200)
      expect(first.headers['cache-control'], path).toBe('no-cache')
      const etag = first.headers.etag as string
      expect(etag, path).toMatch(/^(W\/)?"/)
      const again = await get(gw.httpUrl + path, { 'accept-encoding': 'gzip', 'if-none-match': etag })
      expect(again.status, path).toBe(304)
      expect(again.body.length, path).toBe(0)
    }
  })

  it('compresses the pages too', async () => {
    const page = await get(`${gw.httpUrl}/demo/demo.js`, { 'accept-encoding': 'gzip' })
    expect(page.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(page.body).toString('utf8')).toBe(readFileSync(join(ROOT, 'web-client/demo/demo.js'), 'utf8'))
  })

  it('serves the user\'s files at / without the demo\'s CSP, and the demo at /demo/ with it', async () => {
    const mine = await get(`${gw.httpUrl}/`)
    expect(mine.body.toString()).toContain('<title>mine</title>')
    expect(mine.headers['content-security-policy']).toBeUndefined()
    expect((await get(`${gw.httpUrl}/notes.txt`)).body.toString()).toBe('my own file')
    const demo = await get(`${gw.httpUrl}/demo/`)
    expect(demo.body.toString()).toContain('/demo/demo.js')
    expect(demo.headers['content-security-policy']).toMatch(/default-src 'self'/)
    // The API is still the API, and a missing file is the usual 404.
    expect((await get(`${gw.httpUrl}/healthz`)).status).toBe(200)
    const missing = await get(`${gw.httpUrl}/nope.html`)
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.body.toString()).error.code).toBe('RTW_ROUTE_NOT_FOUND')
  })

  it('runs the README\'s inline-script example, as written, from staticDir in Chromium', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'rtw-chromium-'))
    let context: BrowserContext | undefined
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
      })
      const page = context.pages()[0] ?? await context.newPage()
      const logs: string[] = []
      const errors: string[] = []
      page.on('console', msg => {
        // The browser asks for /favicon.ico by itself; the page has none.
        if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) errors.push(`${msg.text()} @ ${msg.location().url}`)
        else logs.push(msg.text())
      })
      page.on('pageerror', err => errors.push(err.message))
      const logged = page.waitForEvent('console', { predicate: msg => msg.text() === '200 hi', timeout: 15_000 })
      await page.goto(`${gw.httpUrl}/`)
      await logged
      expect(errors.join('\n')).toBe('')
      expect(logs).toContain('200 hi')
    } finally {
      await context?.close()
      rmSync(profile, { recursive: true, force: true })
    }
  })
})
