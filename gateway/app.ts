// buildApp(config) assembles the gateway and never listens; main.ts does that.
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import { METHODS } from 'node:http'
import type { Config } from './config.js'
import { ERRORS, GatewayError, errorBody, type ErrorCode } from '../core/errors.js'
import brokerPlugin from './plugins/broker.js'
import clusterPlugin from './plugins/cluster.js'
import websocketPlugin from './plugins/websocket.js'
import amqpPlugin from './plugins/amqp.js'
import statePlugin from './plugins/state.js'
import authPlugin from './plugins/auth.js'
import apiRoutes from './routes/api.js'
import publishRoutes from './routes/publish.js'
import healthRoutes from './routes/health.js'
import metricsPortPlugin from './plugins/metrics-port.js'
import historyPlugin from './plugins/history.js'
import eventsRoutes from './routes/events.js'
import historyRoutes from './routes/history.js'
import staticPlugin from './plugins/static.js'
import docsPlugin from './plugins/docs.js'
import metricsPlugin from './plugins/metrics.js'
import sysPlugin from './plugins/sys.js'
import { LogLimiter } from './log-limit.js'
import { redactingLogger } from './log-redact.js'
import limitsPlugin from './plugins/limits.js'
import sessionsPlugin from './plugins/sessions.js'
import repliesPlugin from './plugins/replies.js'
import sysVisibilityPlugin from './plugins/sys-visibility.js'
import corsPlugin from './plugins/cors.js'
import hostCheckPlugin from './plugins/host-check.js'
import { clientErrorHandler } from './client-error.js'
import { configFiles } from './config-files.js'
import { compileTrust } from '../core/client-address.js'
import { brokerPipeline } from './pipeline.js'

declare module 'fastify' {
  interface FastifyInstance {
    registeredRoutes: ReadonlyArray<{ method: string, url: string }>
  }
}

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
}

/** The logger of a config: JSON lines, or pino-pretty's coloured lines for a person at a terminal. */
export function consoleLogger (config: Config, pretty: boolean): FastifyServerOptions['logger'] {
  if (config.logLevel === 'silent') return false
  if (!pretty) return { level: config.logLevel }
  return { level: config.logLevel, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
}

/** Fastify's own errors, as the codes of our table. */
function codeFor (err: FastifyError): ErrorCode {
  if (err instanceof GatewayError) return err.code
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'RTW_PAYLOAD_TOO_LARGE'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'RTW_UNSUPPORTED_MEDIA_TYPE'
  }
  const status = err.statusCode ?? 500
  return status >= 400 && status < 500 ? 'RTW_BAD_REQUEST' : 'RTW_INTERNAL'
}

function loggerOptions (given: BuildOptions['logger'], config: Config): FastifyServerOptions['logger'] {
  if (given === false || (given === undefined && config.logLevel === 'silent')) return false
  if (given === undefined || given === true) return redactingLogger(consoleLogger(config, config.logPretty) as Exclude<FastifyServerOptions['logger'], boolean | undefined>)
  return redactingLogger(given)
}

export async function buildApp (config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  // Compiled once: Fastify's req.ip and the WebSocket upgrades (plugins/limits.ts) share it.
  const trust = compileTrust(config.trustedProxies)
  const app = Fastify({
    // https (and so wss) on the same port when a certificate is configured. Spread
    // as `object` so the instance keeps the http typing the plugins are written against.
    ...({ https: configFiles(config).tls ?? null } as object),
    // 400/408/431 from Node's HTTP parser, in our error shape.
    clientErrorHandler: clientErrorHandler(),
    // Every line goes through the redaction of log-redact.ts: no token or key is ever logged.
    logger: loggerOptions(opts.logger, config),
    bodyLimit: config.bodyLimit,
    // The cluster plugin may wait 10 s for Redis, then for its node id to be free
    // (gateway/plugins/cluster.ts), and says why it gave up: longer than avvio's 10 s.
    pluginTimeout: 30_000,
    // req.ip (per-address limits, logs) comes from X-Forwarded-For only when the
    // socket's peer is one of trustedProxies; X-Forwarded-Host/-Proto then feed
    // req.host/req.protocol, which the gateway does not read. false, not an empty
    // list: Fastify would otherwise take the slower trusted-proxy path for nothing.
    trustProxy: trust ?? false,
    // One line per request would dominate the hot path; failures are logged below instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests that arrive while closing reach the bridge, which is draining and
    // answers 503 RTW_SHUTTING_DOWN in our error shape [P-5.6].
    return503OnClosing: false,
    // Every request would otherwise get its own pino child logger just to carry
    // a reqId; our log lines name the method and URL instead.
    childLoggerFactory: logger => logger,
    // The router refuses a URL it cannot decode (e.g. "%zz") before any handler
    // runs; answer it in our error shape too [P-6.1].
    frameworkErrors: (err, req, reply) => {
      const code: ErrorCode = req.url.startsWith('/api/') ? 'RTW_BAD_TARGET' : 'RTW_BAD_REQUEST'
      ;(reply as unknown as FastifyReply).code(ERRORS[code].status).send(errorBody(code, err.message))
    }
  })
  app.decorate('config', config)
  app.decorate('trust', trust)
  // Every route as registered, for the test that keeps openapi.yaml complete (test/integration/docs.test.ts).
  const routes: Array<{ method: string, url: string }> = []
  app.decorate('registeredRoutes', routes)
  app.addHook('onRoute', r => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method, url: r.url })
  })
  // Each plugin puts its broker stage here; brokerPipeline() orders them.
  app.decorate('stages', {})

  // The bridge takes any method a client can send [P-2.1]; CONNECT is a proxy verb, not a request.
  for (const m of METHODS) {
    if (m !== 'CONNECT' && !app.supportedMethods.includes(m)) app.addHttpMethod(m, { hasBody: true })
  }

  // Bodies stay raw bytes: the bridge forwards them untouched, and a JSON parse
  // would turn them into objects (docs/ARCHITECTURE.md "Pitfalls" 4).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  const limited = new LogLimiter(app.log)
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const code = codeFor(err)
    const status = ERRORS[code].status
    // Error level and a stack only for bugs; an expected condition (a 503 while RabbitMQ is
    // down, a draining gateway, a client's mistake) is a warning, rate-limited per code.
    if (code === 'RTW_INTERNAL') req.log.error({ err }, 'request failed')
    else limited.warn(code, `${req.method} ${req.url.slice(0, 200)} -> ${status} ${code}: ${err.message}`)
    const message = err instanceof GatewayError || code === 'RTW_BAD_REQUEST' ? err.message : undefined
    reply.code(status).send(errorBody(code, message))
  })
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('RTW_ROUTE_NOT_FOUND', `No route for ${req.method} ${req.url.split('?')[0]}`))
  })

  // First of all: a request for a Host this gateway does not serve is answered 421 [P-11.10].
  await app.register(hostCheckPlugin)
  await app.register(clusterPlugin)
  await app.register(brokerPlugin)
  // Before auth: a CORS preflight carries no token, and a refused Origin is answered first.
  await app.register(corsPlugin)
  await app.register(authPlugin)
  await app.register(limitsPlugin)
  // Before sessions: client id ownership lives in the same store when dataDir or redisUrl is set.
  await app.register(statePlugin)
  await app.register(sessionsPlugin)
  await app.register(repliesPlugin)
  await app.register(sysVisibilityPlugin)
  await app.register(websocketPlugin)
  await app.register(amqpPlugin)
  await app.register(metricsPlugin)
  await app.register(sysPlugin)
  await app.register(apiRoutes)
  await app.register(publishRoutes)
  await app.register(historyPlugin)
  await app.register(eventsRoutes)
  await app.register(historyRoutes)
  await app.register(healthRoutes)
  await app.register(metricsPortPlugin)
  await app.register(staticPlugin)
  await app.register(docsPlugin)
  // Every plugin has put its stage in app.stages by now; nothing listens yet.
  app.broker.use(brokerPipeline(app.stages))
  return app
}
