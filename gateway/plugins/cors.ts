// CORS for the REST API, and the browser Origin check in front of it
// (config allowedOrigins). A request without Origin is not from a browser page
// and passes untouched; that is also the only cost on the hot path.
//   - Origin not allowed: 403 RTW_ORIGIN_NOT_ALLOWED, before anything runs.
//   - Preflight (OPTIONS with Access-Control-Request-Method): answered 204 here,
//     never bridged to a service and never asked for a token.
//   - Anything else: Access-Control-Allow-Origin and -Expose-Headers are added.
// Which routes take part, and with which methods, is core/http-routes.ts.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { originAllowed } from '../../core/origins.js'
import { httpRoute, preflightRoute } from '../../core/http-routes.js'
import { configFiles } from '../config-files.js'
import { errorBody } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'

/** Response headers a page may read: the gateway's own, plus any a responder sets (`*`, as no credentials are used). */
export const EXPOSED_HEADERS = 'X-Request-Id, Preference-Applied, Retry-After, WWW-Authenticate, X-MQTT-QoS, *'
const TOKEN_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:[ \t]*,[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}$/

/** The methods a page may use on this request's route; undefined when the route is not offered cross-origin. */
function methodsFor (req: FastifyRequest): string | undefined {
  // A preflight has no route of its own (OPTIONS is not registered): go by its path.
  return req.is404 ? preflightRoute(req.url)?.cors : httpRoute(req.routeOptions.url)?.cors
}

async function corsPlugin (app: FastifyInstance): Promise<void> {
  const policy = configFiles(app.config).origins
  const limited = new LogLimiter(app.log)

  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const origin = req.headers.origin
    if (origin === undefined) { done(); return }
    const methods = methodsFor(req)
    if (methods === undefined) { done(); return }
    if (!originAllowed(policy, origin, req.headers.host)) {
      limited.warn('cors-origin', `${req.method} ${req.url.slice(0, 200)}: origin ${JSON.stringify(origin.slice(0, 200))} is not allowed; 403`)
      reply.code(403).send(errorBody('RTW_ORIGIN_NOT_ALLOWED'))
      return
    }
    reply.header('access-control-allow-origin', origin).header('vary', 'Origin')
    const requested = req.headers['access-control-request-method']
    if (req.method === 'OPTIONS' && typeof requested === 'string') {
      const allowHeaders = req.headers['access-control-request-headers']
      reply.code(204)
        .header('access-control-allow-methods', methods !== '*' ? methods : TOKEN.test(requested) ? requested : 'GET')
        .header('access-control-max-age', '600')
      if (typeof allowHeaders === 'string' && allowHeaders.length <= 2048 && TOKEN_LIST.test(allowHeaders)) {
        reply.header('access-control-allow-headers', allowHeaders)
      }
      reply.send()
      return
    }
    reply.header('access-control-expose-headers', EXPOSED_HEADERS)
    done()
  })
}

export default fp(corsPlugin, { name: 'rtw-cors' })
