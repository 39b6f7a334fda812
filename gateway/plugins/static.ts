// Pages and files, served from disk by @fastify/static:
//   GET /demo/…            web-client/demo/ (the demo page; also at / when no staticDir is set)
//   GET /dashboard, /dashboard/…   web-client/dashboard/ (the live dashboard)
//   GET /pages/…           web-client/pages/ (modules both pages share: the Token field)
//   GET /client/…          web-client/dist/ (realtime-web.js, its source map and .d.ts)
//   GET /…                 staticDir, the user's own files, when configured
// Files are not content-hashed, so every response carries an ETag and
// `Cache-Control: no-cache`: browsers revalidate and get a 304 when nothing
// changed. The bundle is sent as the .br or .gz file the build wrote beside
// it; other text is compressed on the fly. Only the routes of this plugin pay
// for compression: it is registered in this plugin's own scope, not on /api.
import type { FastifyInstance } from 'fastify'
import type { SetHeadersResponse } from '@fastify/static'
import fastifyStatic from '@fastify/static'
import compress from '@fastify/compress'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// Our pages talk only to their own origin; the client's timers run in a blob: worker.
// The user's own files (staticDir) get no CSP from us: their inline scripts are theirs.
const PAGE_CSP = "default-src 'self'; connect-src 'self'; worker-src blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** The project root: the nearest ancestor holding web-client/, from source (gateway/plugins) or from dist/gateway/plugins. */
export function projectRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'web-client', 'demo'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
}

function revalidate (res: SetHeadersResponse): void {
  res.setHeader('cache-control', 'no-cache')
  res.setHeader('x-content-type-options', 'nosniff')
}

function ownPage (res: SetHeadersResponse, path: string): void {
  revalidate(res)
  if (path.endsWith('.html')) {
    res.setHeader('content-security-policy', PAGE_CSP)
    res.setHeader('referrer-policy', 'no-referrer')
  }
}

export default async function staticPlugin (app: FastifyInstance): Promise<void> {
  const root = projectRoot()
  const demo = join(root, 'web-client', 'demo')
  const dashboard = join(root, 'web-client', 'dashboard')
  const common = { decorateReply: false, cacheControl: false, etag: true, lastModified: true, setHeaders: ownPage } as const

  await app.register(compress, { global: true, encodings: ['br', 'gzip'], threshold: 1024 })
  // The one registration that adds reply.sendFile (for `/` below).
  await app.register(fastifyStatic, { ...common, decorateReply: true, root: join(root, 'web-client', 'dist'), prefix: '/client/', preCompressed: true, index: false })
  await app.register(fastifyStatic, { ...common, root: demo, prefix: '/demo/' })
  await app.register(fastifyStatic, { ...common, root: dashboard, prefix: '/dashboard/' })
  await app.register(fastifyStatic, { ...common, root: join(root, 'web-client', 'pages'), prefix: '/pages/' })
  // The pages themselves also without the trailing slash; their assets use absolute paths.
  app.get('/demo', (_req, reply) => reply.sendFile('index.html', demo))
  app.get('/dashboard', (_req, reply) => reply.sendFile('index.html', dashboard))

  const own = app.config.staticDir
  if (own !== '') {
    await app.register(fastifyStatic, { ...common, root: resolve(own), prefix: '/', setHeaders: revalidate })
  } else {
    app.get('/', (_req, reply) => reply.sendFile('index.html', demo))
  }
}
