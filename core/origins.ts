// Which browser origins may open a WebSocket or call the REST API (config
// allowedOrigins). Pure: the transports pass the Origin and Host headers in.

export type OriginPolicy =
  | { kind: 'any' }
  | { kind: 'same-origin' }
  | { kind: 'list', origins: ReadonlySet<string> }

/** No entries = same origin only, "*" among them = any origin, else exactly these, such as ["https://app.example.com", "http://localhost:5173"]. */
export function parseOriginPolicy (entries: readonly string[]): OriginPolicy {
  if (entries.length === 0) return { kind: 'same-origin' }
  if (entries.includes('*')) return { kind: 'any' }
  return { kind: 'list', origins: new Set(entries.map(normalizeOrigin)) }
}

/** Lower case, no trailing slash: browsers send `https://host[:port]` exactly so. */
export function normalizeOrigin (origin: string): string {
  const o = origin.trim().toLowerCase()
  return o.endsWith('/') ? o.slice(0, -1) : o
}

/** The host[:port] of an origin, or null for "null" and anything that is not scheme://host. */
function hostOf (origin: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]+)$/.exec(origin)
  return m === null ? null : m[1] as string
}

/**
 * True when a request with this Origin header may proceed. A request without
 * Origin is not from a browser page (or is a same-origin GET), so it is allowed:
 * the allowlist protects browsers' users, and other clients can forge any header.
 */
export function originAllowed (policy: OriginPolicy, origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true
  if (policy.kind === 'any') return true
  const o = normalizeOrigin(origin)
  if (policy.kind === 'list') return policy.origins.has(o)
  // Same origin: the page was served by this gateway under the host name it asked for.
  const h = hostOf(o)
  return h !== null && host !== undefined && h === host.trim().toLowerCase()
}
