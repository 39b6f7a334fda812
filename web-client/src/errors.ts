// One error type for everything request(), publish() and subscribe() can fail
// with: the gateway's own codes (core/errors.ts, PROTOCOL.md §6) and the
// client's, which all start with RTW_CLIENT_.

/** Codes the gateway answers with; test/unit/web-client-parts.test.ts keeps this list equal to core/errors.ts. */
export type GatewayErrorCode =
  | 'RTW_BAD_TARGET' | 'RTW_BAD_REQUEST' | 'RTW_BAD_TIMEOUT' | 'RTW_BAD_TOPIC' | 'RTW_BAD_JSON'
  | 'RTW_UNAUTHORIZED' | 'RTW_FORBIDDEN' | 'RTW_NO_RESPONDER' | 'RTW_NO_RETAINED' | 'RTW_ROUTE_NOT_FOUND'
  | 'RTW_RESULT_NOT_FOUND' | 'RTW_PAYLOAD_TOO_LARGE'
  | 'RTW_ORIGIN_NOT_ALLOWED' | 'RTW_HOST_NOT_ALLOWED' | 'RTW_REQUEST_TIMEOUT' | 'RTW_HEADERS_TOO_LARGE' | 'RTW_CALLER_GONE'
  | 'RTW_UNSUPPORTED_MEDIA_TYPE' | 'RTW_TOO_MANY_REQUESTS' | 'RTW_INTERNAL' | 'RTW_BAD_REPLY'
  | 'RTW_SHUTTING_DOWN' | 'RTW_QUEUE_UNAVAILABLE' | 'RTW_TOO_MANY_STREAMS' | 'RTW_PUBLISH_FAILED' | 'RTW_REPLY_TIMEOUT'
  | 'RTW_BAD_IDEMPOTENCY_KEY' | 'RTW_IDEMPOTENCY_IN_PROGRESS' | 'RTW_IDEMPOTENCY_KEY_REUSED'
  | 'RTW_IDEMPOTENCY_STORE_FULL' | 'RTW_STATE_UNAVAILABLE'

/** Codes made by this library; `status` is 0 for them. */
export const CLIENT_ERRORS = {
  /** A non-idempotent request was in flight when the connection dropped; it may or may not have run. */
  RTW_CLIENT_CONNECTION_LOST: 'The connection dropped while the request was in flight; it was not retried because its method is not idempotent',
  /** No reply (or no connection) before the request's timeout plus a grace period. */
  RTW_CLIENT_TIMEOUT: 'No reply before the timeout',
  /** close() was called, or the client gave up reconnecting. */
  RTW_CLIENT_CLOSED: 'The client is closed',
  /** fetch() failed (REST route): network error or aborted. */
  RTW_CLIENT_NETWORK: 'The HTTP request failed',
  /** Too many requests and publishes are waiting for a connection. */
  RTW_CLIENT_QUEUE_FULL: 'Too many operations are waiting for a connection',
  /** A bad argument: an invalid topic or filter, a body on GET over REST… */
  RTW_CLIENT_INVALID_ARGUMENT: 'Invalid argument',
  /** The gateway refused the MQTT connection (CONNACK return code in the message). */
  RTW_CLIENT_CONNECT_REFUSED: 'The gateway refused the connection',
  /** The broker refused a subscription (SUBACK 0x80). */
  RTW_CLIENT_SUBSCRIBE_REFUSED: 'The gateway refused the subscription'
} as const

export type ClientErrorCode = keyof typeof CLIENT_ERRORS

/** A code this client knows, or a newer gateway's code it does not (still a string starting with RTW_). */
export type ErrorCode = GatewayErrorCode | ClientErrorCode | (string & Record<never, never>)

export interface ErrorResponse {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array
}

export class GatewayError extends Error {
  /** A stable code: the gateway's (`RTW_…`) or the client's (`RTW_CLIENT_…`). */
  readonly code: ErrorCode
  /** The HTTP status the gateway gave; 0 for client-made errors. */
  readonly status: number
  /** The gateway's request id, when it named one. */
  readonly requestId: string | undefined
  /** The reply the error came in, when there was one. */
  readonly response: ErrorResponse | undefined

  constructor (code: ErrorCode, message?: string, status = 0, requestId?: string, response?: ErrorResponse) {
    super(message ?? (CLIENT_ERRORS as Record<string, string>)[code] ?? code)
    this.name = 'GatewayError'
    this.code = code
    this.status = status
    this.requestId = requestId
    this.response = response
  }
}

export const clientError = (code: ClientErrorCode, detail?: string): GatewayError =>
  new GatewayError(code, detail === undefined ? CLIENT_ERRORS[code] : `${CLIENT_ERRORS[code]}: ${detail}`)
