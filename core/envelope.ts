// Request and reply envelopes (PROTOCOL.md §2, §3). Pure codec, no I/O.
import { isUtf8 } from 'node:buffer'

export type Headers = Record<string, string>

/**
 * [P-2.6] Who made a request, as the gateway verified it: with auth on, the
 * token's subject and the claims a responder may need, never the token itself.
 */
export interface CallerIdentity {
  sub: string
  /** How the caller authenticated: a JWT or a static API key [P-11.9]. */
  via: 'jwt' | 'api-key'
  iss?: string
  aud?: string | string[]
  /** The token's expiry, epoch seconds; absent for API keys. */
  exp?: number
  /** The token's other claims (not `rtw` and not the registered ones), when it has any. */
  claims?: Record<string, unknown>
  /** The MQTT client id of an MQTT-native caller [P-4.2]. */
  clientId?: string
}

/** [P-2.1] What the gateway publishes on `$req/<service>/<path…>`. */
export interface RequestEnvelope {
  id: string
  method: string
  path: string
  query: string
  headers: Headers
  body?: string
  enc?: 'base64'
  /** [P-2.6] present only with auth on. */
  caller?: CallerIdentity
  replyTo: string
  deadline: number
}

/** A decoded reply, whichever form it came in. */
export interface Reply {
  id: string | undefined
  status: number
  headers: Headers
  body: string | Buffer
}

export interface EncodedBody { body?: string, enc?: 'base64' }

/**
 * [P-2.3] Valid UTF-8 travels as a JSON string, anything else as base64 with
 * `enc: "base64"`. Both decode back to the same bytes, so any body round-trips.
 */
export function encodeBody (buf: Buffer): EncodedBody {
  if (buf.length === 0) return {}
  if (isUtf8(buf)) return { body: buf.toString('utf8') }
  return { body: buf.toString('base64'), enc: 'base64' }
}

export function encodeRequest (env: RequestEnvelope): Buffer {
  return Buffer.from(JSON.stringify(env))
}

/**
 * [P-2.2] The caller's credentials: never forwarded to a responder, which could
 * otherwise replay them with every other grant they carry, unless the service
 * is listed in `forwardCredentials`. (`proxy-authorization` is hop-by-hop and
 * always removed.)
 */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'cookie']

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'host'
])

/** [P-2.2] End-to-end headers only: hop-by-hop ones (RFC 9110 §7.6.1) and framing are the gateway's business. */
export function endToEndHeaders (raw: Record<string, string | string[] | undefined>, extraDrop?: ReadonlySet<string>): Headers {
  const out: Headers = {}
  for (const name in raw) {
    if (HOP_BY_HOP.has(name) || extraDrop?.has(name) === true) continue
    const value = raw[name]
    if (value === undefined) continue
    out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

export type DecodeResult = { ok: true, reply: Reply } | { ok: false, reason: string, id?: string }

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// What an HTTP response may carry: a token as the name (RFC 9110 §5.1), and no
// control characters or code points above U+00FF in the value. Anything else
// would make Node throw while writing the response.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/

// Header names already checked, mapped to their lower-case form ('' for a
// hop-by-hop one, which is left out). A responder sends the same few names in
// every reply, and the lower-casing and the regular expression were a fifth of
// decoding one. Bounded: names past the bound are checked each time.
const CHECKED_NAMES = new Map<string, string>()
const CHECKED_NAMES_MAX = 1024

/** The lower-case form of a valid header name, '' for a hop-by-hop one, undefined for an invalid one. */
function checkedName (name: string): string | undefined {
  let lower = CHECKED_NAMES.get(name)
  if (lower !== undefined) return lower
  if (!HEADER_NAME.test(name)) return undefined
  lower = name.toLowerCase()
  if (HOP_BY_HOP.has(lower)) lower = ''
  if (CHECKED_NAMES.size < CHECKED_NAMES_MAX) CHECKED_NAMES.set(name, lower)
  return lower
}

function decodeHeaders (v: unknown): Headers | null {
  if (v === undefined) return {}
  if (!isRecord(v)) return null
  const out: Headers = {}
  for (const name in v) {
    const lower = checkedName(name)
    if (lower === undefined) return null
    if (lower === '') continue
    const value = v[name]
    let text: string
    if (typeof value === 'string') text = value
    else if (typeof value === 'number' || typeof value === 'boolean') text = String(value)
    else return null
    if (BAD_HEADER_VALUE.test(text)) return null
    out[lower] = text
  }
  return out
}

/**
 * [P-3.3] Decodes a reply payload. A reply that is an unchanged request envelope
 * (it has `method` and no `status`) is the original project's mirror echo and
 * means 200 with the request's body and content type [P-7.1].
 */
export function decodeReply (payload: Buffer): DecodeResult {
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch {
    return { ok: false, reason: 'reply is not JSON' }
  }
  if (!isRecord(parsed)) return { ok: false, reason: 'reply is not a JSON object' }
  const id = typeof parsed.id === 'string' ? parsed.id : undefined
  const mirror = parsed.status === undefined && typeof parsed.method === 'string'
  let status = 200
  if (parsed.status !== undefined) {
    // A final status only: a 1xx written as the response breaks the HTTP exchange (the client sees a hang-up).
    if (typeof parsed.status !== 'number' || !Number.isInteger(parsed.status) || parsed.status < 200 || parsed.status > 599) {
      return { ok: false, reason: 'status must be an integer from 200 to 599', id }
    }
    status = parsed.status
  }
  const headers = decodeHeaders(parsed.headers)
  if (headers === null) return { ok: false, reason: 'headers must be an object of valid HTTP header names and string values', id }
  if (mirror) {
    // Only the content type of an echoed request describes its body; the rest were request headers.
    const ct = headers['content-type']
    for (const k in headers) delete headers[k]
    if (ct !== undefined) headers['content-type'] = ct
  }
  let body: string | Buffer = ''
  const raw = parsed.body
  if (parsed.enc === 'base64') {
    if (typeof raw !== 'string') return { ok: false, reason: 'a base64 body must be a string', id }
    body = Buffer.from(raw, 'base64')
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/octet-stream'
  } else if (parsed.enc !== undefined) {
    return { ok: false, reason: 'enc must be "base64" when present', id }
  } else if (typeof raw === 'string') {
    body = raw
    if (headers['content-type'] === undefined) headers['content-type'] = 'text/plain; charset=utf-8'
  } else if (raw !== undefined) {
    // [P-3.4] any other JSON value is the body itself, as JSON.
    body = JSON.stringify(raw)
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/json; charset=utf-8'
  }
  return { ok: true, reply: { id, status, headers, body } }
}

/** [P-4.4] A reply as delivered to an MQTT-native caller: its own id, body kept in envelope form. */
export function encodeCallerReply (callerId: string, reply: Reply): Buffer {
  const out: Record<string, unknown> = { id: callerId, status: reply.status, headers: reply.headers }
  if (typeof reply.body === 'string') {
    if (reply.body.length > 0) out.body = reply.body
  } else {
    Object.assign(out, encodeBody(reply.body))
  }
  return Buffer.from(JSON.stringify(out))
}

/** A request from an MQTT-native caller [P-4.1]. */
export interface CallerRequest {
  id: string
  replyTo: string
  method: string
  query: string
  headers: Headers
  body?: string
  enc?: 'base64'
  timeout?: number
}

export type CallerDecode = { ok: true, request: CallerRequest } | { ok: false, reason: string, id?: string, replyTo?: string }

/** [P-4.1] Validates the envelope an MQTT-native caller publishes on `$req/…`. */
export function decodeCallerRequest (payload: Buffer): CallerDecode {
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch {
    return { ok: false, reason: 'request is not JSON' }
  }
  if (!isRecord(parsed)) return { ok: false, reason: 'request is not a JSON object' }
  const id = parsed.id
  const replyTo = parsed.replyTo
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) return { ok: false, reason: 'id must be a string of 1 to 128 characters' }
  if (typeof replyTo !== 'string') return { ok: false, reason: 'replyTo must be a topic', id }
  const bad = (reason: string): CallerDecode => ({ ok: false, reason, id, replyTo })
  const method = parsed.method ?? 'POST'
  if (typeof method !== 'string' || !/^[A-Z]{1,16}$/.test(method)) return bad('method must be an upper-case HTTP method')
  const query = parsed.query ?? ''
  if (typeof query !== 'string') return bad('query must be a string')
  const headers = decodeHeaders(parsed.headers)
  if (headers === null) return bad('headers must be an object of valid HTTP header names and string values')
  const request: CallerRequest = { id, replyTo, method, query, headers }
  if (parsed.enc !== undefined && parsed.enc !== 'base64') return bad('enc must be "base64" when present')
  if (parsed.body !== undefined) {
    if (typeof parsed.body === 'string') {
      request.body = parsed.body
      if (parsed.enc === 'base64') request.enc = 'base64'
    } else {
      request.body = JSON.stringify(parsed.body)
      if (headers['content-type'] === undefined) headers['content-type'] = 'application/json'
    }
  }
  if (parsed.timeout !== undefined) {
    if (typeof parsed.timeout !== 'number' || !Number.isInteger(parsed.timeout) || parsed.timeout < 0) return bad('timeout must be a whole number of milliseconds')
    request.timeout = parsed.timeout
  }
  return { ok: true, request }
}
