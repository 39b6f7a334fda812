// What a token's holder may do (PROTOCOL.md §11). Pure: claims in, predicates out.
import { topicMatches } from './topics.js'

/** The `rtw` claim of a token [P-11.2]. */
export interface GrantClaim {
  publish?: string[]
  subscribe?: string[]
  call?: string[]
  serve?: string[]
  /** [P-4.8] The MQTT client ids the token may connect with; a trailing `*` matches any rest. Absent: any id. */
  clientid?: string[] | string
}

export interface Grants {
  readonly subject: string
  mayPublish: (topic: string) => boolean
  maySubscribe: (filter: string) => boolean
  mayCall: (service: string) => boolean
  mayServe: (service: string) => boolean
  /** [P-4.8] May connect with this MQTT client id. */
  mayUseClientId: (clientId: string) => boolean
}

/** Everything allowed: the anonymous mode used when no auth is configured [P-11.5]. */
export const ALLOW_ALL: Grants = {
  subject: 'anonymous',
  mayPublish: () => true,
  maySubscribe: () => true,
  mayCall: () => true,
  mayServe: () => true,
  mayUseClientId: () => true
}

function strings (v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : []
}

// [P-11.3] What a substituted value may not contain or be: a wildcard of MQTT
// (`+`, `#`), of the service lists or the AMQP mapping (`*`), a level separator,
// NUL, or a leading `$`, which would move the grant into a reserved namespace.
const UNSAFE_VALUE = /[+#*/]|^\$/

/** True when a `${sub}` or `${clientid}` value is safe to substitute into a grant [P-11.3]. */
export function isSafeGrantValue (v: string | undefined): v is string {
  return v !== undefined && v.length > 0 && !UNSAFE_VALUE.test(v) && !v.includes('\u0000')
}

/**
 * [P-11.3] `${sub}` and `${clientid}` are replaced by the token's subject and
 * the MQTT client id. A grant whose placeholder has no value here (no client
 * id over REST), or whose value would widen it (a wildcard, a level, a `$`
 * namespace, or nothing at all), is void: it grants nothing.
 */
function expand (grant: string, vars: Record<string, string | undefined>): string | null {
  if (grant.indexOf('${') === -1) return grant
  let ok = true
  const out = grant.replace(/\$\{(sub|clientid)\}/g, (_m, name: string) => {
    const v = vars[name]
    if (!isSafeGrantValue(v)) { ok = false; return '' }
    return v
  })
  return ok ? out : null
}

/**
 * True when every topic that `filter` matches is also matched by `grant`, so a
 * subscription can never reach beyond what was granted.
 */
export function filterCovers (grant: string, filter: string): boolean {
  // [MQTT-4.7.2-1] a grant starting with a wildcard does not reach "$" topics either.
  if (filter.charCodeAt(0) === 36 && (grant.charCodeAt(0) === 35 || grant.charCodeAt(0) === 43)) return false
  const g = grant.split('/')
  const f = filter.split('/')
  for (let i = 0; i < g.length; i++) {
    const gl = g[i]
    if (gl === '#') return true
    if (i >= f.length) return false
    const fl = f[i]
    if (fl === '#') return false
    if (gl === '+') continue
    if (fl === '+' || fl !== gl) return false
  }
  return f.length === g.length
}

export function compileGrants (claim: unknown, subject: string, clientId?: string): Grants {
  const c = (typeof claim === 'object' && claim !== null ? claim : {}) as Record<string, unknown>
  const vars = { sub: subject, clientid: clientId }
  const list = (key: keyof GrantClaim): string[] =>
    strings(c[key]).map(g => expand(g, vars)).filter((g): g is string => g !== null)
  const publish = list('publish')
  const subscribe = list('subscribe')
  const call = new Set(list('call'))
  const serve = new Set(list('serve'))
  // A client id pin may use ${sub} only: ${clientid} in it would match whatever id is used.
  const pinned = c.clientid !== undefined
  const ids = (typeof c.clientid === 'string' ? [c.clientid] : strings(c.clientid))
    .map(g => expand(g, { sub: subject, clientid: undefined })).filter((g): g is string => g !== null)
  return {
    subject,
    mayPublish: topic => publish.some(g => topicMatches(g, topic)),
    maySubscribe: filter => subscribe.some(g => filterCovers(g, filter)),
    mayCall: service => call.has('*') || call.has(service),
    mayServe: service => serve.has('*') || serve.has(service),
    mayUseClientId: clientId => !pinned || ids.some(p => p.endsWith('*') ? clientId.startsWith(p.slice(0, -1)) : clientId === p)
  }
}
