// Answers for HTTP requests Node rejects before Fastify sees them: a request
// line or headers over Node's 16 KiB --max-http-header-size (431), a request
// that does not arrive in time (408), and anything the HTTP parser cannot read
// (400). The body is the gateway's usual error object; the connection closes.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { ERRORS, errorBody, type ErrorCode } from '../core/errors.js'
import { LogLimiter } from './log-limit.js'

/** Fastify's clientErrorHandler option; Fastify calls it with `this` bound to the instance. */
export function clientErrorHandler (): (err: Error & { code?: string }, socket: Socket) => void {
  let limited: LogLimiter | undefined
  return function (this: unknown, err: Error & { code?: string }, socket: Socket) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    limited ??= new LogLimiter((this as FastifyInstance).log)
    const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW'
      ? 'RTW_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'RTW_REQUEST_TIMEOUT' : 'RTW_BAD_REQUEST'
    const status = ERRORS[code].status
    limited.warn('http-client-error', `HTTP from ${socket.remoteAddress ?? '?'}: ${err.code ?? err.message} -> ${status} ${code}`)
    if (!socket.writable) {
      socket.destroy()
      return
    }
    const body = JSON.stringify(errorBody(code))
    socket.once('finish', () => socket.destroy())
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
}
