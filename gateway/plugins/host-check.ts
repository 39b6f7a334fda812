// The Host check against DNS rebinding [P-11.10]: an anonymous gateway on
// loopback answers only requests addressed to a loopback name or to a name in
// allowedHosts; anything else gets 421 RTW_HOST_NOT_ALLOWED before any other
// hook runs. WebSocket upgrades ask app.hostAllowed too (plugins/websocket.ts).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { hostAllowed, parseHostPolicy } from '../../core/hosts.js'
import { authEnabled, isLoopback } from '../config.js'
import { errorBody } from '../../core/errors.js'
import { LogLimiter } from '../log-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** [P-11.10] True when a request or upgrade with this Host header may be served. */
    hostAllowed: (host: string | undefined) => boolean
  }
}

// Host headers already found good: a client sends the same one with every request.
const REMEMBERED = 64

async function hostCheckPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const policy = parseHostPolicy(config.allowedHosts, !authEnabled(config) && isLoopback(config.host))
  const good = new Set<string>()
  const allowed = (host: string | undefined): boolean => {
    if (host === undefined || good.has(host)) return true
    if (!hostAllowed(policy, host)) return false
    if (good.size < REMEMBERED) good.add(host)
    return true
  }
  app.decorate('hostAllowed', allowed)
  if (policy.kind === 'any') return
  const limited = new LogLimiter(app.log)
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const host = req.headers.host
    if (allowed(host)) { done(); return }
    limited.warn('host-not-allowed', `${req.method} from ${req.ip}: Host ${JSON.stringify(host?.slice(0, 200))} is not a loopback name or in allowedHosts; 421`)
    reply.code(421).send(errorBody('RTW_HOST_NOT_ALLOWED'))
  })
}

export default fp(hostCheckPlugin, { name: 'rtw-host-check' })
