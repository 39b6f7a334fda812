// Sessions belong to identities [P-4.7]: the broker stage that decides, at
// CONNECT, whether a client may take a client id, from the record kept in a
// SessionOwners store (memory here; the cluster backs it with Redis). With
// auth on, a client id is bound to the subject that created its session;
// without, a responder's or a persistent session's id is bound to the
// address it came from, for takeoverGraceMs.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Client, Stage } from '../../broker/broker.js'
import { MemorySessionOwners, type SessionOwners } from '../../core/sessions.js'
import { namespaceOf } from '../../core/namespaces.js'
import { authEnabled } from '../config.js'
import { identityOf } from '../auth/identity.js'
import { LogLimiter } from '../log-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Who owns each client id [P-4.7]. */
    sessionOwners: SessionOwners
  }
}

// [MQTT-3.2.2-3] 5: not authorized (another subject's id); 2: identifier rejected (anonymous: in use from elsewhere).
const CONNACK_NOT_AUTHORIZED = 5
const CONNACK_IDENTIFIER_REJECTED = 2

// Each connection's remote address, taken when it is accepted: Aedes is not given a WebSocket's request.
const addresses = new WeakMap<object, string | undefined>()

/** A client's remote address: its socket's, or for a WebSocket the one its upgrade was admitted under (trustedProxies). */
export function addressOfClient (client: Client): string | undefined {
  return addresses.has(client.conn) ? addresses.get(client.conn) : (client.conn as { remoteAddress?: string }).remoteAddress
}

async function sessionsPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const auth = authEnabled(config)
  // With auth a clean session's id stays its subject's for maxTimeoutMs after it ends, so a reply
  // still on its way to `$inbox/<id>/…` cannot reach another subject [P-4.7].
  const owners: SessionOwners = new MemorySessionOwners({ auth, graceMs: auth ? config.maxTimeoutMs : config.takeoverGraceMs })
  app.decorate('sessionOwners', owners)
  const leases = new WeakMap<Client, number>()
  const limited = new LogLimiter(app.log)

  const ownerOf = (client: Client): string => auth ? 'sub:' + (identityOf(client)?.sub ?? '') : 'addr:' + (addressOfClient(client) ?? '?')

  app.stages.sessions = {
    name: 'sessions',
    accept (conn, req) {
      addresses.set(conn, req !== undefined ? app.limits.addressOf(req) : (conn as { remoteAddress?: string }).remoteAddress)
      return true
    },
    async authenticate (client) {
      const lease = await owners.claim(client.id, { owner: ownerOf(client), persistent: !client.clean }, Date.now())
      if (lease === null) {
        limited.warn('clientid-taken', `client ${client.id.slice(0, 100)}: the id belongs to another ${auth ? 'subject' : 'address'}; the session is left untouched, CONNACK ${auth ? 5 : 2}`)
        return auth ? CONNACK_NOT_AUTHORIZED : CONNACK_IDENTIFIER_REJECTED
      }
      leases.set(client, lease)
      return 0
    },
    subscribe (client, filter) {
      if (namespaceOf(filter).name === '$req') {
        const lease = leases.get(client)
        if (lease !== undefined) owners.markResponder(client.id, lease)
      }
      return true
    },
    disconnect (client) {
      const lease = leases.get(client)
      if (lease !== undefined) owners.end(client.id, lease, Date.now())
    }
  } satisfies Stage
}

export default fp(sessionsPlugin, { name: 'rtw-sessions', dependencies: ['rtw-broker', 'rtw-limits'] })
