// Authentication and authorization for both transports (PROTOCOL.md §11):
// the JWT or API key [P-11.9] rides in the MQTT CONNECT password (also over
// WebSocket) and in `Authorization: Bearer` on REST, and its grants decide what
// its holder may do.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Client, Stage } from '../../broker/broker.js'
import { ALLOW_ALL, compileGrants, type Grants } from '../../core/grants.js'
import { parseReplyTopic, parseRequestTopic, REQ_PREFIX } from '../../core/topics.js'
import { namespaceOf } from '../../core/namespaces.js'
import { httpRoute } from '../../core/http-routes.js'
import { authEnabled, createVerifier, type TokenVerifier } from '../auth/tokens.js'
import { errorBody } from '../../core/errors.js'
import type { CallerIdentity } from '../../core/envelope.js'
import { LogLimiter } from '../log-limit.js'
import { setIdentity } from '../auth/identity.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's grants; ALLOW_ALL when auth is off. */
    grants: Grants
    /** [P-2.6] The verified caller, told to responders; null when auth is off. */
    caller: CallerIdentity | null
  }
}

// CONNACK return codes [MQTT-3.2.2-3]: 4 bad user name or password, 5 not authorized.
const CONNACK_BAD_CREDENTIALS = 4
const CONNACK_NOT_AUTHORIZED = 5
// setTimeout's ceiling; a later expiry is re-armed when the timer fires.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * What a SUBSCRIBE needs, by namespace (core/namespaces.ts). [P-11.6] A `$req`
 * filter is a request to serve: allowed for a literal service the token may
 * serve, or any with `serve: ["*"]`. Inboxes, results and `$res` are the
 * broker's to decide [P-1.6], [P-10.3].
 */
export function maySubscribeWith (grants: Grants, filter: string): boolean {
  switch (namespaceOf(filter).subscribe) {
    case 'granted': return grants.maySubscribe(filter)
    case 'responder': {
      const service = filter.split('/')[1]
      if (service === undefined || service === '+' || service === '#') return grants.mayServe('*')
      return grants.mayServe(service)
    }
    // [P-16.1] a positioned copy of a filter needs what the filter itself needs.
    case 'copy': return maySubscribeWith(grants, filter.slice(filter.indexOf('/') + 1))
    default: return true
  }
}

/** [P-11.7] What a PUBLISH needs, by namespace: call for `$req`, serve for `$res`, a publish grant for ordinary topics. */
export function mayPublishWith (grants: Grants, topic: string): boolean {
  switch (namespaceOf(topic).mqttPublish) {
    case 'granted': return grants.mayPublish(topic)
    case 'caller': {
      const target = parseRequestTopic(topic)
      return target === null || grants.mayCall(target.service) // a bad target is the bridge's 400 to answer
    }
    case 'responder': {
      const rt = parseReplyTopic(topic)
      return rt !== null && grants.mayServe(rt.service)
    }
    // Dropped by the bridge stage, or refused by the broker, whatever the token says [P-1.7].
    default: return true
  }
}

async function authPlugin (app: FastifyInstance): Promise<void> {
  if (!authEnabled(app.config)) {
    app.log.warn(`No auth configured: anonymous clients may do anything. This is allowed only on a loopback address (${app.config.host}); set RTW_JWT_SECRET or RTW_API_KEYS_FILE to turn auth on.`)
    // A getter rather than an onRequest hook: no per-request work on the hot path.
    app.decorateRequest('grants', { getter: () => ALLOW_ALL })
    app.decorateRequest('caller', { getter: () => null })
    return
  }
  app.decorateRequest('grants', null as unknown as Grants)
  app.decorateRequest('caller', null)
  const verifier: TokenVerifier = createVerifier(app.config)
  const limited = new LogLimiter(app.log)
  const sessions = new WeakMap<Client, { grants: Grants, timer: NodeJS.Timeout | undefined }>()
  // The verifier caches results per token, so this compiles each token's grants once.
  const restGrants = new WeakMap<object, Grants>()
  const grantsOf = (client: Client): Grants => sessions.get(client)?.grants ?? compileGrants({}, '')

  const armExpiry = (client: Client, expiresAt: number): NodeJS.Timeout => {
    const timer = setTimeout(() => {
      if (Date.now() < expiresAt) { armExpiry(client, expiresAt); return }
      // [P-11.4] an expired token ends the connection; there is no anonymous fallback.
      limited.warn('token-expired', `client ${client.id}: token expired, disconnecting`)
      client.close()
    }, Math.min(MAX_TIMER_MS, Math.max(0, expiresAt - Date.now())))
    timer.unref()
    const s = sessions.get(client)
    if (s !== undefined) s.timer = timer
    return timer
  }

  app.stages.auth = {
    name: 'auth',
    async authenticate (client, _username, password) {
      // [P-11.1] the token is the CONNECT password, whatever the user name.
      const result = await verifier.verify(password?.toString('utf8'))
      if (!result.ok) {
        limited.warn(`mqtt-auth-${result.reason}`, `client ${client.id}: ${result.reason} token (${result.message})`)
        return result.reason === 'missing' ? CONNACK_NOT_AUTHORIZED : CONNACK_BAD_CREDENTIALS
      }
      const grants = compileGrants(result.claims.rtw, result.subject, client.id)
      // [P-4.8] a token may pin the client ids it connects with, as EMQX binds clientid to a claim.
      if (!grants.mayUseClientId(client.id)) {
        limited.warn('mqtt-clientid-not-granted', `client ${client.id.slice(0, 100)}: the token of ${result.subject} does not grant this client id; CONNACK 5`)
        return CONNACK_NOT_AUTHORIZED
      }
      setIdentity(client, { ...result.caller, clientId: client.id })
      sessions.set(client, { grants, timer: undefined })
      if (result.expiresAt !== undefined) armExpiry(client, result.expiresAt)
      return 0
    },
    publish (client, packet) {
      if (mayPublishWith(grantsOf(client), packet.topic)) return false
      // [MQTT-3.3.5-2] acknowledged and dropped; an MQTT caller learns why in its inbox.
      limited.warn('mqtt-publish-forbidden', `client ${client.id} may not publish to ${packet.topic}: dropped`)
      if (packet.topic.startsWith(REQ_PREFIX)) app.bridge.refuseCaller(client.id, packet.payload as Buffer, 'RTW_FORBIDDEN')
      return true
    },
    subscribe: (client, filter) => maySubscribeWith(grantsOf(client), filter),
    disconnect (client) {
      const s = sessions.get(client)
      if (s?.timer !== undefined) clearTimeout(s.timer)
      sessions.delete(client)
    }
  } satisfies Stage

  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const header = req.headers.authorization
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined
    const result = await verifier.verify(token)
    if (!result.ok) {
      // [P-11.4] 401 with the reason, as RFC 6750 §3 describes.
      limited.warn(`rest-auth-${result.reason}`, `${req.method} ${req.url.slice(0, 200)}: ${result.reason} token`)
      reply.code(401).header('www-authenticate', `Bearer error="invalid_token", error_description="${result.reason}"`)
        .send(errorBody('RTW_UNAUTHORIZED', `Token ${result.reason}${result.hint === undefined ? '' : ': ' + result.hint}`))
      return reply
    }
    let grants = restGrants.get(result)
    if (grants === undefined) {
      grants = compileGrants(result.claims.rtw, result.subject)
      restGrants.set(result, grants)
    }
    req.grants = grants
    req.caller = result.caller
  }
  // [P-11.11] The check belongs to the routes the table says need a token, as
  // the router matched them (so "/%61pi/…" too); other routes do not pay for it.
  app.addHook('onRoute', route => {
    if (httpRoute(route.url)?.auth !== 'token') return
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    route.onRequest = [authenticate, ...own]
  })
}

export default fp(authPlugin, { name: 'rtw-auth', dependencies: ['rtw-broker'] })
