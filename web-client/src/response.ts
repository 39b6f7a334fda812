// What both request routes share: the options a caller gives, how they become
// a method, headers and body, and how a reply becomes a Response or an error.
import { decodeBytes, encodeBody, type BodyInit } from './body.js'
import { GatewayError, type ErrorCode } from './errors.js'

export interface RequestOptions {
  /** HTTP method; default GET without a body, POST with one. */
  method?: string
  headers?: Record<string, string>
  /** Query string without "?", or a record of parameters. */
  query?: string | Record<string, string>
  /** Strings are sent as text, bytes as bytes (base64 over MQTT), objects and arrays as JSON. */
  body?: BodyInit
  /** ms to wait for the reply; the gateway answers 504 RTW_REPLY_TIMEOUT after it. */
  timeout?: number
  /** `mqtt` (default) over the live connection, or `rest` with fetch(). */
  via?: 'mqtt' | 'rest'
  /** Retry after a reconnect if the connection drops while the request is in flight. Default: true for GET, HEAD, PUT, DELETE, OPTIONS and TRACE. */
  idempotent?: boolean
}

export interface Response {
  status: number
  /** Lower-case header names. */
  headers: Record<string, string>
  /** Valid UTF-8 as a string, other bytes as a Uint8Array; "" when empty. */
  body: string | Uint8Array
  /** status is 2xx. */
  ok: boolean
}

export interface PreparedRequest {
  method: string
  headers: Record<string, string>
  query: string
  body: string | Uint8Array | undefined
  idempotent: boolean
}

const IDEMPOTENT = /^(GET|HEAD|PUT|DELETE|OPTIONS|TRACE)$/

export function prepareRequest (o: RequestOptions): PreparedRequest {
  const method = (o.method ?? (o.body === undefined ? 'GET' : 'POST')).toUpperCase()
  const headers: Record<string, string> = {}
  for (const k in o.headers) headers[k.toLowerCase()] = o.headers[k] as string
  let body: string | Uint8Array | undefined
  if (o.body !== undefined) {
    const enc = encodeBody(o.body)
    body = enc.data
    headers['content-type'] ??= enc.contentType
  }
  const query = typeof o.query === 'string' ? o.query.replace(/^\?/, '') : o.query === undefined ? '' : new URLSearchParams(o.query).toString()
  return { method, headers, query, body, idempotent: o.idempotent ?? IDEMPOTENT.test(method) }
}

/** "" or "/a/b": a path given without its leading slash gets one. */
export const normalizePath = (path: string): string => path === '' || path.startsWith('/') ? path : '/' + path

/**
 * A reply with status >= 400 whose body is the gateway's error shape
 * (`{"error":{"code":"RTW_…"}}`, PROTOCOL.md §6) rejects with that code; any
 * other reply, whatever its status, is the responder's and resolves.
 */
export function toResponse (status: number, headers: Record<string, string>, bytes: Uint8Array): Response {
  const body = decodeBytes(bytes)
  const res: Response = { status, headers, body, ok: status >= 200 && status < 300 }
  if (status >= 400 && typeof body === 'string' && body.startsWith('{')) {
    let err: { code?: unknown, message?: unknown, requestId?: unknown } | undefined
    try {
      err = (JSON.parse(body) as { error?: typeof err }).error
    } catch { /* not JSON: the responder's own body */ }
    if (typeof err?.code === 'string' && err.code.startsWith('RTW_')) {
      const requestId = typeof err.requestId === 'string' ? err.requestId : headers['x-request-id']
      throw new GatewayError(err.code as ErrorCode, typeof err.message === 'string' ? err.message : err.code, status, requestId, res)
    }
  }
  return res
}
