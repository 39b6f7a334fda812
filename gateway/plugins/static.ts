// The demo page and the browser client bundle, served from disk:
//   GET /                 web-client/demo/index.html
//   GET /demo/<file>      the page's CSS, script and images
//   GET /client/<file>    web-client/dist/ (realtime-web.js, its source map and .d.ts)
// Files are not content-hashed, so every response carries an ETag and
// `Cache-Control: no-cache`: browsers revalidate and get a 304 when nothing changed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorBody } from '../../core/errors.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml'
}

// The page talks only to its own origin; the client's timers run in a blob: worker.
const PAGE_CSP = "default-src 'self'; connect-src 'self'; worker-src blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** The project root: the nearest ancestor holding web-client/, from source (gateway/plugins) or from dist/gateway/plugins. */
function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'web-client', 'demo'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
}

async function sendFile (req: FastifyRequest, reply: FastifyReply, path: string): Promise<FastifyReply> {
  const type = TYPES[extname(path)]
  let info
  try {
    info = type === undefined ? undefined : await stat(path)
  } catch { /* missing: answered 404 below */ }
  if (info === undefined || !info.isFile()) {
    const hint = path.includes(join('web-client', 'dist')) ? ': the client bundle is built by `npm run build`' : ''
    return reply.code(404).send(errorBody('RTW_ROUTE_NOT_FOUND', `No such file ${req.url.split('?')[0]}${hint}`))
  }
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`
  reply
    .header('content-type', type as string)
    .header('cache-control', 'no-cache')
    .header('etag', etag)
    .header('x-content-type-options', 'nosniff')
  if (type?.startsWith('text/html') === true) reply.header('content-security-policy', PAGE_CSP).header('referrer-policy', 'no-referrer')
  if (req.headers['if-none-match'] === etag) return reply.code(304).send()
  return reply.send(await readFile(path))
}

// One path level of letters, digits, ".", "_" and "-", not starting with ".": no traversal.
const FILE_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

export default async function staticPlugin (app: FastifyInstance): Promise<void> {
  const root = findRoot()
  const demo = join(root, 'web-client', 'demo')
  const dist = join(root, 'web-client', 'dist')

  app.get('/', (req, reply) => sendFile(req, reply, join(demo, 'index.html')))
  app.get<{ Params: { file: string } }>('/demo/:file', (req, reply) =>
    FILE_RE.test(req.params.file) ? sendFile(req, reply, join(demo, req.params.file)) : reply.callNotFound())
  app.get<{ Params: { file: string } }>('/client/:file', (req, reply) =>
    FILE_RE.test(req.params.file) ? sendFile(req, reply, join(dist, req.params.file)) : reply.callNotFound())
}
