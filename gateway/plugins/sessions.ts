// Sessions belong to identities [P-4.7]: the broker stage that decides, at
// CONNECT, whether a client may take a client id, from the record kept in a
// SessionOwners store: a Map on a single node without dataDir (no I/O on the
// CONNECT path), else the gateway's state store, LevelDB in dataDir so the
// bindings survive a restart, or Redis so they hold across the cluster
// [P-4.9]. With auth on, a client id is bound to the subject that created its
// session; without, a responder's or a persistent session's id is bound to the
// address it came from, for takeoverGraceMs.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Client, Stage } from '../../broker/broker.js'
import { MemorySessionOwners, type Lease, type OwnershipPolicy, type SessionOwners } from '../../core/sessions.js'
import { namespaceOf } from '../../core/namespaces.js'
import { authEnabled } from '../config.js'
import { identityOf } from '../auth/identity.js'
import { LogLimiter } from '../log-limit.js'
import { StoredSessionOwners } from '../sessions/stored-owners.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Who owns each client id [P-4.7]. */
    sessionOwners: SessionOwners
    /** CONNECTs the ownership check refused, by reason, for /stats. */
    sessionCounters: SessionCounters
  }
}

export interface SessionCounters {
  /** The id belongs to another subject (CONNACK 5) or, without auth, another address (CONNACK 2). */
  refusedTaken: number
  /** sessionOwnersMax ids are bound already (CONNACK 3). */
  refusedFull: number
  /** The ownership store could not be read or written (CONNACK 3, or a binding not updated). */
  storeErrors: number
}

// [MQTT-3.2.2-3] 5: not authorized (another subject's id); 2: identifier rejected (anonymous: in use
// from elsewhere); 3: server unavailable (no room for one more binding, or the store is unreachable).
const CONNACK_NOT_AUTHORIZED = 5
const CONNACK_IDENTIFIER_REJECTED = 2
const CONNACK_SERVER_UNAVAILABLE = 3

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
  const policy: OwnershipPolicy = { auth, graceMs: auth ? config.maxTimeoutMs : config.takeoverGraceMs, maxRecords: config.sessionOwnersMax }
  const owners: SessionOwners = app.state.kind === 'memory' ? new MemorySessionOwners(policy) : await StoredSessionOwners.open(app.state, policy)
  const counters: SessionCounters = { refusedTaken: 0, refusedFull: 0, storeErrors: 0 }
  app.decorate('sessionOwners', owners)
  app.decorate('sessionCounters', counters)
  const leases = new WeakMap<Client, Lease>()
  /** Every lease a connection holds now, ended in preClose while the store is still open. */
  const live = new Set<Lease>()
  let closing = false
  const limited = new LogLimiter(app.log)
  const storeFailed = (what: string) => (err: Error): void => {
    counters.storeErrors++
    limited.warn('clientid-store', `client id ownership: ${what}: ${err.message}`)
  }

  const release = (client: Client): void => {
    const lease = leases.get(client)
    if (lease === undefined || closing) return
    leases.delete(client)
    live.delete(lease)
    owners.end(lease, Date.now()).catch(storeFailed('cannot end a session'))
  }

  // One function for every connection (Aedes sets conn.client): no closure per connection.
  function releaseOnClose (this: { client?: Client }): void {
    if (this.client !== undefined) release(this.client)
  }

  const ownerOf = (client: Client): string => auth ? 'sub:' + (identityOf(client)?.sub ?? '') : 'addr:' + (addressOfClient(client) ?? '?')

  app.stages.sessions = {
    name: 'sessions',
    accept (conn, req) {
      addresses.set(conn, req !== undefined ? app.limits.addressOf(req) : (conn as { remoteAddress?: string }).remoteAddress)
      return true
    },
    async authenticate (client) {
      let got
      try {
        got = await owners.claim(client.id, { owner: ownerOf(client), persistent: !client.clean }, Date.now())
      } catch (err) {
        storeFailed('cannot check ' + client.id.slice(0, 100))(err as Error)
        return CONNACK_SERVER_UNAVAILABLE
      }
      if (!got.ok && got.why === 'full') {
        counters.refusedFull++
        limited.warn('clientid-full', `client ${client.id.slice(0, 100)}: sessionOwnersMax (${config.sessionOwnersMax}) client ids are bound already; CONNACK 3`)
        return CONNACK_SERVER_UNAVAILABLE
      }
      if (!got.ok) {
        counters.refusedTaken++
        limited.warn('clientid-taken', `client ${client.id.slice(0, 100)}: the id belongs to another ${auth ? 'subject' : 'address'}; the session is left untouched, CONNACK ${auth ? 5 : 2}`)
        return auth ? CONNACK_NOT_AUTHORIZED : CONNACK_IDENTIFIER_REJECTED
      }
      leases.set(client, got.lease)
      live.add(got.lease)
      // Aedes reports no disconnect for a client that fails between this CONNECT check and its
      // registration (a store error, the socket gone): its connection closing ends the lease then.
      client.conn.on('close', releaseOnClose)
      if (client.conn.destroyed) release(client)
      return 0
    },
    subscribe (client, filter) {
      if (namespaceOf(filter).name === '$req') {
        const lease = leases.get(client)
        if (lease !== undefined) owners.markResponder(lease).catch(storeFailed('cannot mark a responder'))
      }
      return true
    },
    disconnect (client) { release(client) }
  } satisfies Stage
  // Before the broker closes its clients (and the store closes, in onClose): their sessions end now.
  app.addHook('preClose', async () => {
    closing = true
    const now = Date.now()
    await Promise.all([...live].map(async lease => { await owners.end(lease, now).catch(storeFailed('cannot end a session')) }))
  })
}

export default fp(sessionsPlugin, { name: 'rtw-sessions', dependencies: ['rtw-broker', 'rtw-limits', 'rtw-state'] })
