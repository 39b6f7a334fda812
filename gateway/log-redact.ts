// Secrets never reach the log (README "Security"): every log line the gateway
// writes, its own or Fastify's, passes through here. A URL keeps its path and
// the names of its query parameters, but the value of any parameter that looks
// like a credential, the password of a URL's user info, and the credentials of
// an Authorization-style header are replaced by [REDACTED].
import type { FastifyServerOptions } from 'fastify'

export const REDACTED = '[REDACTED]'

// Query parameter names that carry credentials: OAuth's access_token (RFC 6750
// §2.3), id/refresh tokens, API keys, signatures, passwords, session ids, codes.
const CREDENTIAL_NAME = /token|key|secret|pass|pwd|auth|sig|credential|session|cookie|code|jwt|bearer/i
// name=value pairs in a query string; the value stops at a separator, a quote or white space.
const QUERY_PAIR = /([?&;])([^=&;?#\s"']+)=([^&;#\s"']*)/g
// `Bearer <credentials>`, `Basic <credentials>`, as in a logged Authorization header.
const AUTH_SCHEME = /\b(Bearer|Basic|Digest)\s+[^\s"',;]+/gi
// scheme://user:password@host
const USER_INFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']*:)[^@\s"'/]*@/gi
// A JWT anywhere in the text: three base64url parts, the first a JSON header ("eyJ").
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+/g

/** The text with every credential it visibly carries replaced by [REDACTED]. */
export function redactSecrets (text: string): string {
  // Most lines carry none of these markers: leave them untouched, cheaply.
  if (!/[?&;=@]|bearer|basic|digest|eyJ/i.test(text)) return text
  return text
    .replace(QUERY_PAIR, (all, sep: string, name: string) => CREDENTIAL_NAME.test(name) ? `${sep}${name}=${REDACTED}` : all)
    .replace(AUTH_SCHEME, (_all, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(USER_INFO, `$1${REDACTED}@`)
    .replace(JWT, REDACTED)
}

/** A request URL as it may be logged: path and parameter names kept, credentials redacted. */
export function redactUrl (url: string): string {
  return redactSecrets(url)
}

function scrub (value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value)
  if (depth > 3 || typeof value !== 'object' || value === null) return value
  if (value instanceof Error) {
    // Serialized by pino's err serializer: redact what it will print.
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Error
    Object.assign(copy, value)
    copy.message = redactSecrets(value.message)
    if (value.stack !== undefined) copy.stack = redactSecrets(value.stack)
    return copy
  }
  if (Array.isArray(value)) return value.map(v => scrub(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = /^(authorization|proxy-authorization|cookie|set-cookie|password)$/i.test(k) ? REDACTED : scrub(v, depth + 1)
  }
  return out
}

type PinoOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>

/**
 * Pino options with the redaction applied to every log call: the message and
 * any object logged with it, and Fastify's own request serializer.
 */
export function redactingLogger (options: PinoOptions): PinoOptions {
  return {
    ...options,
    hooks: {
      logMethod (args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map(a => scrub(a)))
      }
    },
    serializers: {
      ...(options.serializers as Record<string, unknown> | undefined),
      req: (req: { method?: string, url?: string, hostname?: string, ip?: string }) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        hostname: req.hostname,
        remoteAddress: req.ip
      })
    }
  } as PinoOptions
}
