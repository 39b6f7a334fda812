// The REST bridge: <METHOD> /api/<service>/<path…>?<query> becomes a request on
// $req/<service>/<path…>, and its reply becomes the HTTP response [P-2], [P-3].
import type { OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CREDENTIAL_HEADERS, endToEndHeaders } from '../../core/envelope.js'
import { isValidPath, isValidService, requestTopic } from '../../core/topics.js'
import { ALLOW_ALL } from '../../core/grants.js'
import { checkTopic } from '../../core/conformance.js'
import type { Outcome } from '../../core/correlator.js'
import type { Call } from '../../core/bridge.js'
import { GatewayError, errorBody, ERRORS } from '../../core/errors.js'
import { callQueuedAsync, isQueuedAsync, readResult } from '../amqp/async-call.js'
import { idempotentCall } from './idempotent-call.js'
import { secondLevelStart } from '../../core/http-routes.js'

/** The ids of a connection's requests that still await replies; one per request, more only when pipelined. */
const AWAITING = Symbol('rtw.awaiting')
type Watched = Socket & { [AWAITING]?: string[] }

// Gateway controls that are consumed here, not forwarded to the service [P-2.2].
const OWN_HEADERS = new Set(['x-rtw-timeout', 'prefer'])
// ...and the caller's credentials, unless the service is in forwardCredentials [P-2.2].
const OWN_AND_CREDENTIALS = new Set([...OWN_HEADERS, ...CREDENTIAL_HEADERS])

interface Target { service: string, path: string, query: string, timeoutParam: string | undefined }

/**
 * Splits the raw URL, decoding each level on its own so that an encoded "/"
 * (%2F) cannot join or split levels [P-1.3].
 */
export function parseTarget (url: string): Target {
  const q = url.indexOf('?')
  const start = secondLevelStart(url)
  const pathPart = q === -1 ? url.slice(start) : url.slice(start, q)
  let query = q === -1 ? '' : url.slice(q + 1)
  let timeoutParam: string | undefined
  if (query.includes('timeout=')) {
    const kept: string[] = []
    for (const pair of query.split('&')) {
      if (!pair.startsWith('timeout=')) kept.push(pair)
      else {
        try {
          timeoutParam = decodeURIComponent(pair.slice(8))
        } catch {
          throw new GatewayError('RTW_BAD_TIMEOUT')
        }
      }
    }
    query = kept.join('&')
  }
  let service: string
  let path = ''
  if (pathPart.indexOf('%') === -1) {
    // Nothing encoded (the usual case): the levels stand as they came.
    const slash = pathPart.indexOf('/')
    service = slash === -1 ? pathPart : pathPart.slice(0, slash)
    path = slash === -1 ? '' : pathPart.slice(slash)
  } else {
    const levels = pathPart.split('/')
    try {
      service = decodeURIComponent(levels[0] as string)
      for (let i = 1; i < levels.length; i++) path += '/' + decodeURIComponent(levels[i] as string)
    } catch {
      throw new GatewayError('RTW_BAD_TARGET', 'Invalid percent-encoding in the path')
    }
    // A decoded "/" (from %2F) would add a level: the level count must match the raw URL's [P-1.3].
    if (path.split('/').length !== levels.length) throw new GatewayError('RTW_BAD_TARGET')
  }
  if (!isValidService(service)) throw new GatewayError('RTW_BAD_TARGET', `Invalid service ${JSON.stringify(service)}: use 1-64 letters, digits, "_" or "-"`)
  if (!isValidPath(path)) throw new GatewayError('RTW_BAD_TARGET')
  return { service, path, query, timeoutParam }
}

/** [P-5.4] "10", "2.5" and "10s" are seconds, "500ms" milliseconds. Returns milliseconds. */
export function parseTimeout (raw: string, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(raw.trim())
  if (m === null) throw new GatewayError('RTW_BAD_TIMEOUT')
  // Rounded up: only a timeout that is really 0 means fire and forget [P-2.5].
  const ms = Math.ceil(Number(m[1]) * (m[2] === 'ms' ? 1 : 1000))
  if (ms > maxMs) throw new GatewayError('RTW_BAD_TIMEOUT', `The timeout may be at most ${maxMs} ms`)
  return ms
}

function forget (socket: Watched, id: string): void {
  const ids = socket[AWAITING]
  if (ids === undefined) return
  const i = ids.indexOf(id)
  if (i === -1) return
  ids[i] = ids[ids.length - 1] as string
  ids.pop()
}

export function send (reply: FastifyReply, id: string, outcome: Outcome): void {
  if (reply.sent) return
  reply.header('x-request-id', id)
  if (outcome.kind === 'error') {
    reply.code(ERRORS[outcome.code].status).send(errorBody(outcome.code, outcome.message, id))
    return
  }
  const r = outcome.reply
  // The responder's reply goes straight to Node's response: it is already
  // validated bytes and headers [P-3.3], so Fastify's send pipeline (hooks,
  // content-type and serializer checks) would only cost time, about 5% of the
  // gateway's CPU per request. Headers set earlier on the reply (CORS, the id)
  // come along; Node adds Date and drops the body of a HEAD, 204 or 304.
  const body = r.body
  const headers: OutgoingHttpHeaders = reply.getHeaders() as OutgoingHttpHeaders
  for (const name in r.headers) headers[name] = r.headers[name]
  // Without it, writeHead would commit to chunked encoding. RFC 9110 §8.6: none on 204 or 304.
  if (r.status !== 204 && r.status !== 304) headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  reply.hijack()
  reply.raw.writeHead(r.status, headers)
  // A string body goes out in one write with the head; Node encodes it as UTF-8.
  reply.raw.end(body)
}

export default async function apiRoutes (app: FastifyInstance): Promise<void> {
  const config = app.config
  const topicLimits = { maxTopicLength: config.maxTopicLength, maxTopicLevels: config.maxTopicLevels }
  const bridge = app.bridge
  const forwardCredentials = new Set(config.forwardCredentials)

  function handler (req: FastifyRequest, reply: FastifyReply): undefined | Promise<FastifyReply> {
    const target = parseTarget(req.url)
    // [P-11.7] the token must grant calling this service.
    if (!req.grants.mayCall(target.service)) throw new GatewayError('RTW_FORBIDDEN', `The token does not grant calling ${target.service}`)
    // The request topic obeys the same maxTopicLength/maxTopicLevels as an MQTT client's.
    const over = checkTopic(requestTopic(target.service, target.path), topicLimits)
    if (over !== null) throw new GatewayError('RTW_BAD_TARGET', `The request ${over.reason}`)
    const headerTimeout = req.headers['x-rtw-timeout']
    const rawTimeout = target.timeoutParam ?? (typeof headerTimeout === 'string' ? headerTimeout : undefined)
    const timeoutMs = rawTimeout === undefined ? config.requestTimeoutMs : parseTimeout(rawTimeout, config.maxTimeoutMs)
    const prefer = req.headers.prefer
    const noReply = timeoutMs === 0 || (typeof prefer === 'string' && prefer.includes('respond-async'))
    const call: Call = {
      service: target.service,
      path: target.path,
      method: req.method,
      query: target.query,
      headers: endToEndHeaders(req.headers, forwardCredentials.has(target.service) ? OWN_HEADERS : OWN_AND_CREDENTIALS),
      body: req.body as Buffer | undefined,
      timeoutMs,
      noReply,
      // maxInFlightPerClient counts per token subject, or per address without auth.
      owner: req.grants === ALLOW_ALL ? 'ip:' + req.ip : 'sub:' + req.grants.subject,
      caller: req.caller ?? undefined
    }
    // [P-13] executed at most once per caller and key; one header lookup for calls without it.
    const idempotencyKey = req.headers['idempotency-key']
    if (idempotencyKey !== undefined) return idempotentCall(app, reply, call, idempotencyKey, send)
    if (isQueuedAsync(app, target.service, noReply)) {
      // RabbitMQ-queued: 202 only once confirmed, with a status URL for the result (docs/AMQP.md §4).
      callQueuedAsync(app, call, (id, outcome) => send(reply, id, outcome))
      return
    }
    const socket = req.raw.socket as Watched | null
    const started = bridge.call(call, (outcome, id) => {
      if (socket !== null) forget(socket, id)
      send(reply, id, outcome)
    })
    if (!started.ok) throw new GatewayError(started.code)
    if (!noReply && socket !== null) watch(socket, started.id)
    if (noReply) {
      // [P-2.5] accepted, nobody waits for the reply.
      reply.code(202).header('x-request-id', started.id).header('preference-applied', 'respond-async')
        .send({ id: started.id, status: 'accepted' })
    }
  }

  /**
   * [P-5.7] One 'close' listener per connection, not per request: a caller
   * that hangs up gives back its in-flight places at once instead of holding
   * them until its timeout.
   */
  function watch (socket: Watched, id: string): void {
    // Settled already (a publish that failed at once): nothing to watch.
    if (!bridge.correlator.has(id)) return
    if (socket.destroyed) {
      bridge.correlator.cancel(id)
      return
    }
    let ids = socket[AWAITING]
    if (ids === undefined) {
      const list: string[] = []
      ids = list
      socket[AWAITING] = list
      socket.once('close', () => { for (const pending of list.splice(0)) bridge.correlator.cancel(pending) })
    }
    ids.push(id)
  }

  const methods = app.supportedMethods.filter(m => m !== 'CONNECT')
  app.route({ method: methods, url: '/api/*', handler })
  app.get('/requests/:handle', (req, reply) => readResult(app, req, reply))
}
