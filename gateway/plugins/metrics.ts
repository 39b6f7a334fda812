// GET /metrics in the Prometheus text format (prom-client), from the one
// Metrics object that /stats, the $SYS topics and the dashboard read too.
//
// With auth on, /metrics and /stats need a token (JWT or API key,
// `Authorization: Bearer`) whose subscribe grants cover `$SYS/#`: the same
// grant that lets a client read the $SYS topics and the dashboard, since they
// all show the same numbers. Without auth (loopback only, [P-11.5]) they are
// open like everything else.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Duplex } from 'node:stream'
import { isWebSocket } from '../../broker/ws-stream.js'
import { Metrics } from '../metrics/registry.js'
import { authEnabled } from '../config.js'
import { createVerifier } from '../auth/tokens.js'
import { compileGrants } from '../../core/grants.js'
import { errorBody } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
    /** The rule of /metrics and /stats: true to go on; else it has answered 401 or 403. Always true without auth. */
    numbersGuard: (req: FastifyRequest, reply: FastifyReply) => Promise<boolean>
  }
}

/** The subscribe grant that lets its holder read the gateway's numbers: $SYS, /metrics, the dashboard. */
export const SYS_FILTER = '$SYS/#'

async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const { broker, bridge } = app
  const metrics = new Metrics({ maxServices: app.config.metricsMaxServices })
  bridge.observer = metrics

  // Connected MQTT clients by transport: a WebSocket is its upgraded socket (broker/ws-stream.ts); TLS counts as tcp.
  const open = { tcp: new Set<unknown>(), ws: new Set<unknown>() }
  broker.aedes.on('client', client => open[isWebSocket(client.conn as Duplex) ? 'ws' : 'tcp'].add(client))
  broker.aedes.on('clientDisconnect', client => { open.tcp.delete(client); open.ws.delete(client) })
  metrics.addConnectionSource('tcp', () => open.tcp.size)
  metrics.addConnectionSource('ws', () => open.ws.size)
  metrics.setSubscriptionSource(() => broker.subscriptions.filterCount)
  metrics.setInFlightSource(() => bridge.correlator.size)
  // Replies the correlator dropped, and MQTT callers' unusable requests. publishRate drops nothing: it slows the client down.
  metrics.addDropSource(() => bridge.correlator.dropped)
  metrics.addDropSource(() => ({ 'bad-request': bridge.badRequests }))
  metrics.setMessageSource(() => broker.counters)
  const amqp = app.amqp
  if (amqp !== null) metrics.registerUp('amqp', () => amqp.conn.up)
  // The cluster's Redis, as the gateway's state store sees it (plugins/state.ts).
  if (app.config.redisUrl !== '' && app.hasDecorator('state')) metrics.registerUp('redis', () => app.state.healthy)
  app.decorate('metrics', metrics)
  // SSE streams (routes/events.ts) are a transport of their own, registered after this plugin.
  app.addHook('onReady', async () => {
    if (app.hasDecorator('sse')) metrics.addConnectionSource('sse', () => app.sse.open())
  })

  const guard = authEnabled(app.config) ? sysReaderGuard(app) : async () => true
  app.decorate('numbersGuard', guard)
  app.get('/metrics', async (req, reply) => {
    if (!(await guard(req, reply))) return reply
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

/** With auth on: true when the request's Bearer token grants subscribing to $SYS/#, else answers 401 or 403 and returns false. */
function sysReaderGuard (app: FastifyInstance): (req: FastifyRequest, reply: FastifyReply) => Promise<boolean> {
  const verifier = createVerifier(app.config)
  const limited = new LogLimiter(app.log)
  return async (req, reply) => {
    const header = req.headers.authorization
    const result = await verifier.verify(typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined)
    if (!result.ok) {
      limited.warn(`metrics-auth-${result.reason}`, `GET ${req.routeOptions.url ?? req.url}: ${result.reason} token`)
      reply.code(401).header('www-authenticate', `Bearer error="invalid_token", error_description="${result.reason}"`).send(errorBody('RTW_UNAUTHORIZED', `Token ${result.reason}`))
      return false
    }
    if (!compileGrants(result.claims.rtw, result.subject).maySubscribe(SYS_FILTER)) {
      reply.code(403).send(errorBody('RTW_FORBIDDEN', `Reading metrics needs a subscribe grant covering ${SYS_FILTER}`))
      return false
    }
    return true
  }
}

export default fp(metricsPlugin, { name: 'rtw-metrics', dependencies: ['rtw-broker', 'rtw-limits'] })
