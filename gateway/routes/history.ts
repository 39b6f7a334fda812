// GET /history: what a subscriber missed since a position, for MQTT clients
// that recover by themselves (PROTOCOL.md §16). GET /events does the same
// for its streams on its own.
import type { FastifyInstance } from 'fastify'
import { formatPosition, parsePosition, type Recovery } from '../../core/history.js'
import { messageFields } from '../../core/sse.js'
import { errorBody, GatewayError } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'
import { streamAuthenticator } from '../auth/stream-token.js'
import { authorizeFilters, parseFilters } from '../sse/filters.js'

export default async function historyRoutes (app: FastifyInstance): Promise<void> {
  const config = app.config
  const limits = { maxTopicLength: config.maxTopicLength, maxTopicLevels: config.maxTopicLevels }
  const authenticate = streamAuthenticator(config)
  const limited = new LogLimiter(app.log)

  app.get('/history', async (req, reply) => {
    try {
      const filters = parseFilters(req.query, limits, config.sseMaxTopics)
      const auth = await authenticate(req)
      if (!auth.ok) {
        reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${auth.reason}"`)
        throw new GatewayError('RTW_UNAUTHORIZED', `Token ${auth.reason}`)
      }
      authorizeFilters(auth.grants, filters)
      const history = app.history
      const sinceText = (req.query as Record<string, unknown>).since
      const since = typeof sinceText === 'string' ? parsePosition(sinceText) : null
      if (history === null) return { recovered: false, position: null, messages: [] }
      // [P-16.2] no since (or one that does not parse): the position only, so a client knows where it stands.
      const r: Recovery = since === null ? { recovered: false, entries: [], head: await history.head() } : await history.recover(filters, since)
      reply.header('cache-control', 'no-store')
      return {
        recovered: r.recovered,
        position: formatPosition(r.head),
        messages: r.entries.map(e => ({ id: formatPosition({ epoch: r.head.epoch, offset: e.offset }), ...messageFields(e.topic, e.payload, e.qos, false) }))
      }
    } catch (err) {
      // Answered here: the app's error handler would log the URL, ?access_token= and all [P-15.6].
      if (!(err instanceof GatewayError)) throw err
      limited.warn(`history-${err.code}`, `GET /history -> ${err.statusCode} ${err.code}: ${err.message}`)
      return reply.code(err.statusCode).send(errorBody(err.code, err.message))
    }
  })
}
