// GET /events: live messages as Server-Sent Events, with recovery from a
// Last-Event-ID and the retained values first on request (PROTOCOL.md §15).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PublishPacket } from 'aedes'
import { parsePosition, type Position, type Recovery } from '../../core/history.js'
import { formatEvent, formatMarker, formatRetry, HEARTBEAT } from '../../core/sse.js'
import { topicMatches } from '../../core/topics.js'
import { errorBody, GatewayError } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'
import { streamAuthenticator, type StreamAuth } from '../auth/stream-token.js'
import { authorizeFilters, parseFilters } from '../sse/filters.js'
import { SseStream, type CloseReason } from '../sse/stream.js'

export interface SseCounters {
  /** Streams opened since start. */
  opened: number
  /** Refused with 503 RTW_TOO_MANY_STREAMS (sseMaxStreams). */
  refusedFull: number
  /** Refused with 429: past the per-address connection rate's hard bound (connectRate). */
  refusedRate: number
  /** Refused with 401 or 403. */
  refusedAuth: number
  /** Closed because the client let more than maxOutboundBytes pile up unsent. */
  slowConsumers: number
  /** Closed because their token expired. */
  expired: number
  /** Recoveries asked for with Last-Event-ID, and those answered RTW-Recovered: true. */
  recoveries: number
  recovered: number
}

export interface SseStats {
  readonly counters: SseCounters
  /** Streams open now (the `sse` transport's connections). */
  readonly open: () => number
}

declare module 'fastify' {
  interface FastifyInstance {
    sse: SseStats
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1

function lastEventId (req: FastifyRequest): string | undefined {
  const header = req.headers['last-event-id']
  if (typeof header === 'string' && header !== '') return header
  const q = (req.query as Record<string, unknown>).lastEventID
  return typeof q === 'string' && q !== '' ? q : undefined
}

async function eventsRoutes (app: FastifyInstance): Promise<void> {
  const config = app.config
  const limits = { maxTopicLength: config.maxTopicLength, maxTopicLevels: config.maxTopicLevels }
  const authenticate = streamAuthenticator(config)
  const limited = new LogLimiter(app.log)
  const streams = new Set<SseStream>()
  const counters: SseCounters = { opened: 0, refusedFull: 0, refusedRate: 0, refusedAuth: 0, slowConsumers: 0, expired: 0, recoveries: 0, recovered: 0 }
  app.decorate('sse', { counters, open: () => streams.size })

  // One beat for every stream [P-15.4].
  const beat = setInterval(() => { for (const s of streams) s.write(HEARTBEAT) }, config.sseHeartbeatMs)
  beat.unref()
  app.addHook('preClose', async () => {
    clearInterval(beat)
    for (const s of [...streams]) s.close('shutdown', 'RTW_SHUTTING_DOWN')
  })

  const refuseAuth = (reply: FastifyReply, auth: StreamAuth & { ok: false }): FastifyReply => {
    counters.refusedAuth++
    limited.warn(`sse-auth-${auth.reason}`, `GET /events: ${auth.reason} token; 401`)
    return reply.code(401).header('www-authenticate', `Bearer error="invalid_token", error_description="${auth.reason}"`)
      .send(errorBody('RTW_UNAUTHORIZED', `Token ${auth.reason}`))
  }

  // Refusals are answered here rather than by the app's error handler, which
  // would log the URL: with ?access_token= in it [P-15.6].
  app.get('/events', async (req, reply) => {
    try {
      return await openStream(req, reply)
    } catch (err) {
      if (!(err instanceof GatewayError) || reply.sent) throw err
      limited.warn(`sse-${err.code}`, `GET /events -> ${err.statusCode} ${err.code}: ${err.message}`)
      return reply.code(err.statusCode).send(errorBody(err.code, err.message))
    }
  })

  const openStream = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const filters = parseFilters(req.query, limits, config.sseMaxTopics)
    const auth = await authenticate(req)
    if (!auth.ok) return refuseAuth(reply, auth)
    try {
      authorizeFilters(auth.grants, filters)
    } catch (err) {
      counters.refusedAuth++
      throw err
    }
    if (streams.size >= config.sseMaxStreams) {
      counters.refusedFull++
      limited.warn('sse-full', `GET /events: ${streams.size} streams open (sseMaxStreams); 503`)
      throw new GatewayError('RTW_TOO_MANY_STREAMS')
    }
    // [P-15.7] a stream is a connection: the per-address connection rate applies as to MQTT.
    // Over it, the stream waits for its turn; only past the hard bound is it refused (README "Limits").
    const wait = app.limits.admitConnection(app.limits.addressOf(req.raw))
    if (wait < 0) {
      counters.refusedRate++
      reply.header('retry-after', '1')
      throw new GatewayError('RTW_TOO_MANY_REQUESTS', `So many new connections from this address that this one would wait too long for connectRate (${config.connectRate}/s)`)
    }
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))

    const res = reply.raw
    let expiry: NodeJS.Timeout | undefined
    const stream = new SseStream(res, config.maxOutboundBytes, (reason: CloseReason) => {
      streams.delete(stream)
      app.live.remove(stream)
      if (expiry !== undefined) clearTimeout(expiry)
      if (reason === 'slow-consumer') {
        counters.slowConsumers++
        limited.warn('sse-slow-consumer', `GET /events: more than ${config.maxOutboundBytes} bytes unsent (maxOutboundBytes); stream closed`)
      } else if (reason === 'expired') counters.expired++
    })
    streams.add(stream)
    counters.opened++
    // Subscribed before anything is read, so nothing published from here on is missed.
    app.live.add(stream, filters)

    const since = lastEventId(req)
    let recovery: Recovery | null = null
    let head: Position | undefined
    const history = app.history
    if (since !== undefined) {
      counters.recoveries++
      const from = parsePosition(since)
      // [P-15.5] a position that does not parse, or no history at all, cannot be recovered from.
      if (from !== null && history !== null) recovery = await history.recover(filters, from)
      if (recovery?.recovered === true) counters.recovered++
    }
    if (history !== null) head = recovery?.head ?? await history.head()

    reply.hijack()
    const headers: Record<string, string | number | string[]> = {}
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v
    // Once a stream ends, its connection closes too: nobody reuses it, and shutdown need not wait for it.
    res.shouldKeepAlive = false
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...(since === undefined ? {} : { 'rtw-recovered': recovery?.recovered === true ? 'true' : 'false' })
    })
    res.socket?.setNoDelay(true)
    // [P-15.2] the reconnect delay hint.
    stream.write(formatRetry(config.sseRetryMs))

    if (auth.expiresAt !== undefined) {
      const expiresAt = auth.expiresAt
      const arm = (): void => {
        expiry = setTimeout(() => {
          if (Date.now() < expiresAt) { arm(); return }
          // [P-11.4] as for MQTT connections: an expired token ends the stream.
          stream.close('expired', 'RTW_UNAUTHORIZED')
        }, Math.min(MAX_TIMER_MS, Math.max(0, expiresAt - Date.now())))
        expiry.unref()
      }
      arm()
    }

    const retained = (req.query as Record<string, unknown>).retained
    if (retained === '1' || retained === 'true') {
      const seen = new Set<string>()
      for await (const packet of retainedMatching(app, filters)) {
        if (stream.closed) break
        if (seen.has(packet.topic) || !filters.some(f => topicMatches(f, packet.topic))) continue
        seen.add(packet.topic)
        stream.write(formatEvent({ topic: packet.topic, payload: Buffer.from(packet.payload as Buffer), qos: packet.qos }, true))
      }
    }
    if (recovery?.recovered === true) {
      for (const e of recovery.entries) stream.write(formatEvent({ ...e, position: { epoch: recovery.head.epoch, offset: e.offset } }))
    }
    // [P-15.2] where the stream stands now, sent back as Last-Event-ID after a drop: a quiet
    // stream recovers too. Messages recorded after it follow, each with its own id.
    // Its data says what the RTW-Recovered header says, for EventSource, which cannot read headers.
    if (head !== undefined || since !== undefined) stream.write(formatMarker(head, since === undefined ? undefined : recovery?.recovered === true))
    stream.goLive(recovery?.recovered === true ? recovery.head.offset : 0)
    return reply
  }
}

/** Retained messages matching any of the filters (Aedes persistence; a topic may come once per matching filter). */
function retainedMatching (app: FastifyInstance, filters: readonly string[]): AsyncIterable<PublishPacket> {
  const persistence = (app.broker.aedes as unknown as { persistence: { createRetainedStreamCombi: (p: string[]) => AsyncIterable<PublishPacket> } }).persistence
  return persistence.createRetainedStreamCombi([...filters])
}

// fastify-plugin: app.sse is read at the top level (/stats, metrics).
export default fp(eventsRoutes, { name: 'rtw-events', dependencies: ['rtw-history', 'rtw-limits'] })
