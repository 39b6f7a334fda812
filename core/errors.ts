// The one table of stable error codes. Each code maps to an HTTP status and is
// also the `error.code` of a gateway-made `$res` reply [P-6.1]. Codes are never
// renamed or reused; test/unit/docs-sync.test.ts keeps this table, README.md,
// openapi.yaml and PROTOCOL.md in sync.

export const ERRORS = {
  RTW_BAD_TARGET: { status: 400, message: 'Invalid service or path: levels must be non-empty and may not contain wildcards, "$", NUL, "." or ".." levels' },
  RTW_BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  RTW_BAD_TIMEOUT: { status: 400, message: 'The timeout must be a whole number of milliseconds between 0 and the configured maximum' },
  RTW_BAD_TOPIC: { status: 400, message: 'Invalid topic: a topic name must be non-empty UTF-8 without wildcards or NUL' },
  RTW_BAD_IDEMPOTENCY_KEY: { status: 400, message: 'The Idempotency-Key header must be 1-255 visible ASCII characters, optionally in double quotes' },
  RTW_BAD_JSON: { status: 400, message: 'The body is not valid JSON' },
  RTW_UNAUTHORIZED: { status: 401, message: 'A valid, unexpired token is required' },
  RTW_FORBIDDEN: { status: 403, message: 'The token does not grant this' },
  RTW_ORIGIN_NOT_ALLOWED: { status: 403, message: 'This browser origin is not in allowedOrigins' },
  RTW_NO_RESPONDER: { status: 404, message: 'No responder is subscribed for this service' },
  RTW_NO_RETAINED: { status: 404, message: 'No retained message on this topic' },
  RTW_ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  RTW_RESULT_NOT_FOUND: { status: 404, message: 'No async result with this handle: it never existed, or its retention time has passed' },
  RTW_REQUEST_TIMEOUT: { status: 408, message: 'The request headers or body did not arrive in time' },
  RTW_IDEMPOTENCY_IN_PROGRESS: { status: 409, message: 'A request with this Idempotency-Key is still running; retry after it finishes' },
  RTW_PAYLOAD_TOO_LARGE: { status: 413, message: 'The body is larger than the configured limit' },
  RTW_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported content type' },
  RTW_HOST_NOT_ALLOWED: { status: 421, message: 'This gateway does not answer for this Host name: add it to allowedHosts' },
  RTW_TOO_MANY_REQUESTS: { status: 429, message: 'Too many requests are in flight' },
  RTW_IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was already used for a different method, path, query or body' },
  RTW_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than the server accepts (16 KiB)' },
  // Never sent (the client is gone); it names the outcome in logs and /stats.
  RTW_CALLER_GONE: { status: 499, message: 'The client closed the connection before the reply came' },
  RTW_INTERNAL: { status: 500, message: 'Internal gateway error' },
  RTW_BAD_REPLY: { status: 502, message: 'The responder sent a reply that could not be decoded' },
  RTW_SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down' },
  RTW_QUEUE_UNAVAILABLE: { status: 503, message: 'The request queue (RabbitMQ) is unavailable' },
  RTW_TOO_MANY_STREAMS: { status: 503, message: 'The gateway holds as many GET /events streams as sseMaxStreams allows' },
  RTW_PUBLISH_FAILED: { status: 503, message: 'The broker could not accept the message' },
  RTW_STATE_UNAVAILABLE: { status: 503, message: 'The state store (Redis or LevelDB) could not be reached' },
  RTW_IDEMPOTENCY_STORE_FULL: { status: 503, message: 'Too many Idempotency-Keys are remembered; retry later' },
  RTW_REPLY_TIMEOUT: { status: 504, message: 'No reply arrived before the timeout' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

export interface ErrorBody {
  error: { code: ErrorCode, message: string, requestId?: string }
}

export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number

  constructor (code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message)
    this.name = 'GatewayError'
    this.code = code
    this.statusCode = ERRORS[code].status
  }
}

export function errorBody (code: ErrorCode, message?: string, requestId?: string): ErrorBody {
  const error: ErrorBody['error'] = { code, message: message ?? ERRORS[code].message }
  if (requestId !== undefined) error.requestId = requestId
  return { error }
}
