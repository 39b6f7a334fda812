// Debian's chromium, headless, driven by playwright-core, with a throwaway
// profile; console errors are collected so a test can fail on them.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

export interface TestBrowser {
  context: BrowserContext
  page: Page
  /** Console errors and uncaught exceptions not matched by `allow`. */
  errors: string[]
  allow: RegExp[]
  close: () => Promise<void>
}

export async function launchChromium (): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'rtw-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RTW_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  const page = context.pages()[0] ?? await context.newPage()
  page.setDefaultTimeout(15_000)
  const b: TestBrowser = {
    context,
    page,
    errors: [],
    allow: [],
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
  page.on('console', msg => {
    if (process.env.RTW_E2E_CONSOLE === '1') console.log(`[browser ${msg.type()}] ${msg.text()}`)
    if (msg.type() !== 'error') return
    const text = `${msg.text()} @ ${msg.location().url}`
    if (!b.allow.some(re => re.test(text))) b.errors.push(text)
  })
  page.on('pageerror', err => b.errors.push(`uncaught: ${err.message}`))
  return b
}
