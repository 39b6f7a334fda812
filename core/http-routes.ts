// The gateway's HTTP routes, in one table (PROTOCOL.md [P-11.11]): who checks
// the caller on each, and which methods a browser page on another origin may
// use there. Every check that treats a path differently reads this table:
// the REST token check (plugins/auth.ts) and CORS with its Origin check
// (plugins/cors.ts), as core/namespaces.ts is for topics. Pure: no I/O.
//
// A route is known by the pattern it was registered with, so a check follows
// the route the router chose, not the URL's spelling: the router decodes
// "/%61pi/echo" into "/api/echo", which a regex on the raw URL would miss.

/**
 * Who checks the caller.
 * - `token`: `Authorization: Bearer`, checked by plugins/auth.ts before the route runs; its grants then decide [P-11.4], [P-11.7].
 * - `stream-token`: the route checks a Bearer header or `?access_token=` itself (auth/stream-token.ts) [P-15.6].
 * - `sys-reader`: the route checks for a token whose subscribe grants cover `$SYS/#` (plugins/metrics.ts) [P-9.1].
 * - `handle`: the unguessable handle in the path is the capability [P-10.3].
 * - `public`: nobody; health checks, the demo and client files, the API docs.
 */
export type RouteAuth = 'token' | 'stream-token' | 'sys-reader' | 'handle' | 'public'

export interface HttpRoute {
  /** The pattern as registered with Fastify: `*` is the rest of the path, `:name` one level. */
  readonly url: string
  readonly auth: RouteAuth
  /**
   * Methods a page on another allowed origin may use, as the preflight answers them;
   * `*` any (the call is bridged to a service, which decides); undefined: not offered
   * cross-origin, and no Origin check is made.
   */
  readonly cors?: string
}

/** Every route the gateway registers; routes of the API docs page (`/docs/…`) are `public` too. */
export const HTTP_ROUTES: readonly HttpRoute[] = [
  { url: '/api/*', auth: 'token', cors: '*' },
  { url: '/publish', auth: 'token', cors: 'POST' },
  { url: '/retained/*', auth: 'token', cors: 'GET, HEAD' },
  { url: '/requests/:handle', auth: 'handle', cors: 'GET, HEAD' },
  { url: '/events', auth: 'stream-token', cors: 'GET' },
  { url: '/history', auth: 'stream-token', cors: 'GET' },
  { url: '/metrics', auth: 'sys-reader' },
  { url: '/stats', auth: 'sys-reader' },
  // Public: health checks for load balancers, and the files of the demo page and dashboard.
  { url: '/healthz', auth: 'public' },
  { url: '/readyz', auth: 'public' },
  { url: '/', auth: 'public' },
  { url: '/*', auth: 'public' },
  { url: '/demo', auth: 'public' },
  { url: '/demo/*', auth: 'public' },
  { url: '/dashboard', auth: 'public' },
  { url: '/dashboard/*', auth: 'public' },
  { url: '/client/*', auth: 'public' },
  { url: '/pages/*', auth: 'public' }
]

const DOCS = /^\/docs(\/|$)/
const byUrl = new Map(HTTP_ROUTES.map(r => [r.url, r]))
const docsRoute: HttpRoute = { url: '/docs/*', auth: 'public' }

/** The table's row for a registered route pattern; undefined for one the table does not know. */
export function httpRoute (url: string | undefined): HttpRoute | undefined {
  if (url === undefined) return undefined
  return byUrl.get(url) ?? (DOCS.test(url) ? docsRoute : undefined)
}

/** Whether a request path (decoded, no query) is one the route pattern matches, as the router matches it. */
function matches (pattern: string, levels: readonly string[]): boolean {
  const want = pattern.split('/')
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string
    const got = levels[i]
    if (got === undefined) return false
    if (w === '*') return true
    if (w.startsWith(':') ? got === '' : got !== w) return false
  }
  return levels.length === want.length
}

/**
 * The row offered cross-origin whose pattern a request path matches, for a
 * CORS preflight (OPTIONS) that no route of its own matched. Levels are
 * decoded as the router decodes them; an undecodable path has no row.
 */
export function preflightRoute (rawUrl: string): HttpRoute | undefined {
  const q = rawUrl.indexOf('?')
  let levels: string[]
  try {
    levels = (q === -1 ? rawUrl : rawUrl.slice(0, q)).split('/').map(decodeURIComponent)
  } catch {
    return undefined
  }
  for (const r of HTTP_ROUTES) {
    if (r.cors !== undefined && matches(r.url, levels)) return r
  }
  return undefined
}

/**
 * Where the raw URL's second level starts: the service of `/api/*` and the topic
 * of `/retained/*`, however the first level the router decoded was spelled
 * ("/%61pi/echo" too; the router never decodes an encoded "/" there).
 */
export function secondLevelStart (rawUrl: string): number {
  return rawUrl.indexOf('/', 1) + 1
}
