// /docs serves openapi.yaml (@fastify/swagger, static mode) in Swagger UI and
// as /docs/json and /docs/yaml; and the description and the app agree: every
// route the app registers is described, and every described path is served.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'

// Fastify's wildcard routes, as the spec spells their parameters.
const WILDCARDS: Record<string, string> = {
  '/api/*': '/api/{service}/{path}',
  '/retained/*': '/retained/{topic}',
  '/client/*': '/client/{file}',
  '/demo/*': '/demo/{file}',
  '/dashboard/*': '/dashboard/{file}',
  '/pages/*': '/pages/{file}'
}
// Swagger UI's own assets and settings under /docs: part of the docs page, not of the API.
const DOCS_INTERNALS = /^\/docs\/(static\/|initOAuth$|uiConfig$|\*$)|^\/docs\/$/

const specPath = (url: string): string => WILDCARDS[url] ?? url.replace(/:([A-Za-z]+)/g, '{$1}')

describe('/docs and openapi.yaml', () => {
  let gw: TestGateway
  let spec: { openapi: string, paths: Record<string, Record<string, unknown>> }
  beforeAll(async () => {
    gw = await startGateway()
    spec = await (await fetch(`${gw.httpUrl}/docs/json`)).json() as typeof spec
  })
  afterAll(async () => { await gw.close() })

  it('serves Swagger UI at /docs, and the spec as JSON and YAML, as openapi.yaml has it', async () => {
    const page = await fetch(`${gw.httpUrl}/docs`, { redirect: 'follow' })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/text\/html/)
    expect(await page.text()).toMatch(/swagger-ui/i)
    expect(spec.openapi).toBe('3.1.0')
    const yaml = await fetch(`${gw.httpUrl}/docs/yaml`)
    expect(yaml.status).toBe(200)
    const text = await yaml.text()
    const file = readFileSync(join(import.meta.dirname, '..', '..', 'openapi.yaml'), 'utf8')
    for (const path of Object.keys(spec.paths)) {
      expect(text).toContain(`${path}:`)
      expect(file).toContain(`  ${path}:`)
    }
  })

  it('describes every route the app registers', () => {
    const undocumented = gw.app.registeredRoutes
      .filter(r => r.method !== 'HEAD' && !DOCS_INTERNALS.test(r.url))
      .filter(r => !(specPath(r.url) in spec.paths))
      .map(r => `${r.method} ${r.url}`)
    expect(undocumented).toEqual([])
  })

  it('serves every path it describes', async () => {
    const served = new Set(gw.app.registeredRoutes.map(r => specPath(r.url)))
    const missing = Object.keys(spec.paths).filter(p => !served.has(p))
    expect(missing).toEqual([])
    // And they answer: a concrete URL of each GET path is not "no such route".
    for (const [path, ops] of Object.entries(spec.paths)) {
      // /events is a stream that does not end; that it is served is checked above.
      if (!('get' in ops) || path === '/events') continue
      const url = path.replace('{service}', 'nobody').replace('{path}', 'x').replace('{topic}', 'none/here')
        .replace('{handle}', 'nohandle').replace('/client/{file}', '/client/realtime-web.js').replace('/pages/{file}', '/pages/token-field.js').replace('{file}', 'index.html')
      const res = await fetch(gw.httpUrl + url)
      const body = await res.text()
      if (res.status === 404) expect((JSON.parse(body) as { error: { code: string } }).error.code, `GET ${url}`).not.toBe('RTW_ROUTE_NOT_FOUND')
    }
  })
})
