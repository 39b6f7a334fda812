// The embedded Aedes broker: construction, the TCP listener, subscription
// tracking, and the one place where Aedes's callback hooks are adapted to ours.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Aedes, type Client, type PublishPacket, type Subscription } from 'aedes'
import { SubscriptionIndex } from '../gateway/core/subscriptions.js'
import { batchWrites, flushNow } from './write-batch.js'
import { qos0PublishFrame } from './publish-frame.js'
import { tapReplies } from './reply-tap.js'
import { RES_PREFIX, INBOX_PREFIX, REQ_PREFIX, isValidTopicFilter } from '../gateway/core/topics.js'
import { checkTopic, connectViolation, textViolation, type TopicLimits } from './conformance.js'
import type { BrokerBackends } from './backends.js'

export type { Client, PublishPacket }

export interface BrokerHooks {
  /**
   * Sees every client PUBLISH after it was authorized and acknowledged, before
   * it is routed. It may rewrite `packet.payload`. Returning true swallows the
   * packet: it is not routed to any subscriber [P-3.6].
   */
  intercept?: (client: Client, packet: PublishPacket) => boolean
  /** A client publish or subscribe that was refused; for counters and rate-limited logs. */
  refused?: (client: Client | null, what: string) => void
  /**
   * CONNECT credentials. Resolves 0 to accept, or the CONNACK return code to
   * refuse with (4 bad user name or password, 5 not authorized) [MQTT-3.2.2-5].
   */
  authenticate?: (client: Client, username: string | undefined, password: Buffer | undefined) => Promise<number>
  /** The token's subscribe grants (auth), checked after the built-in `$res`/`$inbox` rules; false refuses with SUBACK 0x80. */
  aclSubscribe?: (client: Client, filter: string) => boolean
  /** A further subscribe check (limits); false refuses with SUBACK 0x80. */
  allowSubscribe?: (client: Client, filter: string) => boolean
  /** Before CONNECT is processed; false closes the connection (connection-rate limits). */
  preConnect?: (client: Client) => boolean
  /** Before each delivery to a client; false drops that delivery (slow consumers, per-client ACLs). */
  allowForward?: (client: Client, packet: PublishPacket) => boolean
  /**
   * A new connection, before Aedes sees a byte of it (`req` for WebSocket).
   * False destroys it at once (connection-rate limits); it may also wrap the
   * connection's reader (the packet-size guard).
   */
  accept?: (conn: Duplex, req?: IncomingMessage) => boolean
}

export interface BrokerOptions {
  /** Disconnect a subscriber whose socket has not drained for this long (Aedes drainTimeout). */
  drainTimeoutMs?: number
  /** Messages Aedes routes at once; see PERF-NOTES pitfall 5. */
  concurrency?: number
  /** Longest topic and most levels: a PUBLISH over them closes the connection, a SUBSCRIBE gets 0x80. */
  topicLimits?: TopicLimits
  /** PEM certificate and key: listenTcp then serves mqtts. */
  tls?: { cert: Buffer, key: Buffer }
  /** Where state is kept and how messages are routed (backends.ts); Aedes's in-memory defaults when absent. */
  backends?: BrokerBackends
}

export interface Broker {
  readonly aedes: Aedes
  /** Filters held by connected clients, for "is anyone listening" answers. */
  readonly subscriptions: SubscriptionIndex<Client>
  /** Filled in field by field by the plugins (broker, auth, limits); each wraps what is already there. */
  readonly hooks: BrokerHooks
  /** Serves one MQTT connection (a TCP socket or a WebSocket duplex). */
  handle: (conn: Duplex, req?: IncomingMessage) => void
  listenTcp: (port: number, host: string) => Promise<AddressInfo>
  /** Publishes on behalf of the gateway, bypassing authorizePublish. */
  publish: (topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, cb: (err?: Error | null) => void) => void
  /** The retained message on exactly this topic, if any. */
  readRetained: (topic: string) => Promise<{ payload: Buffer, qos: number } | null>
  close: () => Promise<void>
}

export async function createBroker (opts: BrokerOptions = {}): Promise<Broker> {
  const subscriptions = new SubscriptionIndex<Client>()
  const state: { hooks: BrokerHooks } = { hooks: {} }
  // Aedes's own ceiling (qlobber's max_words) when no limit is configured.
  const topicLimits: TopicLimits = opts.topicLimits ?? { maxTopicLength: 65_535, maxTopicLevels: 100 }
  const refuse = (reason: string): Error => Object.assign(new Error(reason), { alreadyLogged: true })
  // [MQTT-3.1.3-8] an empty ClientId with CleanSession 0 gets CONNACK 0x02; Aedes would invent an id.
  const emptyIdWithSession = new WeakSet<Client>()
  const backends = opts.backends
  // In a cluster every message goes through the shared routing (mqemitter-redis), so the fast lane for requests steps aside.
  const clustered = backends?.mq !== undefined
  // QoS 1 PUBLISHes already routed, and so stored, before Aedes acknowledges them (see ackAfterStore).
  const routedEarly = new WeakSet<PublishPacket>()

  const aedes = await Aedes.createBroker({
    ...(backends?.persistence === undefined ? {} : { persistence: backends.persistence as never }),
    ...(backends?.mq === undefined ? {} : { mq: backends.mq as never }),
    concurrency: opts.concurrency ?? 1000,
    drainTimeout: opts.drainTimeoutMs ?? 10_000,
    // In a cluster, a node silent for three heartbeats is dead and a live one publishes its clients' wills.
    heartbeatInterval: clustered ? 2_000 : 60_000,
    // A socket that sends no CONNECT is closed after this long (Aedes's default is 30 s), so idle floods cost little.
    connectTimeout: 10_000,
    authorizePublish (client, packet, callback) {
      // Ill-formed text closes the connection [MQTT-1.5.3-1], [MQTT-1.5.3-2]; so does a topic over the
      // limits: MQTT 3.1.1 has no negative PUBACK, and [MQTT-3.3.5-2] allows closing instead.
      const bad = checkTopic(packet.topic, topicLimits)
      if (bad !== null) {
        state.hooks.refused?.(client, `publish to ${JSON.stringify(packet.topic.slice(0, 100))}: ${bad.reason}; disconnected`)
        callback(refuse(bad.reason))
        return
      }
      // [MQTT-2.3.1-1] a QoS 1 or 2 PUBLISH carries a non-zero Packet Identifier.
      if (packet.qos > 0 && packet.messageId === 0) {
        state.hooks.refused?.(client, 'PUBLISH with Packet Identifier 0 [MQTT-2.3.1-1]; disconnected')
        callback(refuse('Packet Identifier 0'))
        return
      }
      // [MQTT-3.3.2-2] wildcards are already refused by Aedes; $SYS is the broker's own.
      if (packet.topic.startsWith('$SYS/')) {
        state.hooks.refused?.(client, 'publish to $SYS')
        callback(new Error('$SYS/ topic is reserved'))
        return
      }
      if (backends?.durable === true && packet.qos === 1 && client !== null) {
        ackAfterStore(client, packet, callback)
        return
      }
      callback(null)
    },
    preConnect (client, packet, callback) {
      const bad = connectViolation(packet, topicLimits)
      if (bad !== null) {
        state.hooks.refused?.(null, `CONNECT ${bad}; disconnected`)
        callback(refuse(bad), false)
        return
      }
      if (packet.clientId === '' && packet.clean === false) emptyIdWithSession.add(client)
      const ok = state.hooks.preConnect?.(client) ?? true
      callback(ok ? null : new Error('connection refused by limits'), ok)
    },
    authenticate (client, username, password, callback) {
      if (emptyIdWithSession.has(client)) {
        state.hooks.refused?.(client, 'CONNECT with an empty ClientId and CleanSession 0 [MQTT-3.1.3-8]; CONNACK 0x02')
        callback(Object.assign(new Error('identifier rejected'), { returnCode: 2, alreadyLogged: true }) as Parameters<typeof callback>[0], false)
        return
      }
      const hook = state.hooks.authenticate
      if (hook === undefined) { callback(null, true); return }
      hook(client, username, password).then(code => {
        if (code === 0) callback(null, true)
        // alreadyLogged: the hook logged the reason; Aedes re-emits this as clientError.
        else callback(Object.assign(new Error('not authorized'), { returnCode: code, alreadyLogged: true }) as Parameters<typeof callback>[0], false)
      }, () => callback(Object.assign(new Error('authentication failed'), { returnCode: 3 }) as Parameters<typeof callback>[0], false))
    },
    authorizeForward (client, packet) {
      return state.hooks.allowForward === undefined || state.hooks.allowForward(client, packet) ? packet : null
    },
    authorizeSubscribe (client, sub, callback) {
      const hooks = state.hooks
      // [MQTT-4.7.1-2], [MQTT-4.7.1-3] "+" and "#" occupy whole levels; Aedes lets "a+" through.
      if (!isValidTopicFilter(sub.topic)) {
        hooks.refused?.(client, `subscribe: ${JSON.stringify(sub.topic.slice(0, 100))} is not a valid topic filter; disconnected`)
        callback(refuse('invalid topic filter'), null)
        return
      }
      const bad = checkTopic(sub.topic, topicLimits)
      if (bad?.close === true) {
        hooks.refused?.(client, `subscribe: ${bad.reason}; disconnected`)
        callback(refuse(bad.reason), null)
        return
      }
      const allowed = bad === null && subscriptionAllowed(client, sub) &&
        (hooks.aclSubscribe?.(client, sub.topic) ?? true) &&
        (hooks.allowSubscribe?.(client, sub.topic) ?? true)
      if (!allowed) state.hooks.refused?.(client, `subscribe to ${JSON.stringify(sub.topic.slice(0, 100))}${bad === null ? '' : ': ' + bad.reason}`)
      // null negates just this subscription: SUBACK 0x80 [MQTT-3.9.3], the connection stays.
      callback(null, allowed ? sub : null)
    }
  })

  // Intercepting at publish time rather than in authorizePublish lets the client
  // keep its PUBACK while the packet itself is consumed by the gateway.
  const routePublish = aedes.publish.bind(aedes) as unknown as (packet: PublishPacket, client: Client | null, done: (err?: Error | null) => void) => void
  const publishFrom = function (packet: PublishPacket, client: Client | null, done: (err?: Error | null) => void): void {
    if (typeof client === 'function') return routePublish(packet, null, client)
    if (routedEarly.has(packet)) {
      routedEarly.delete(packet)
      done?.(null)
      return
    }
    if (client !== null && client !== undefined && state.hooks.intercept?.(client, packet) === true) {
      done?.(null)
      return
    }
    routePublish(packet, client, done)
  }
  ;(aedes as unknown as { publish: typeof publishFrom }).publish = publishFrom

  // Aedes writes PUBACK before it routes a QoS 1 PUBLISH (aedes/lib/handlers/publish.js),
  // so a crash between the two would lose a message its publisher was told was
  // taken. With durable state the message is routed, and so stored for every
  // offline session and as a retained value, last thing before the PUBACK;
  // Aedes's own routing of it afterwards is then skipped (publishFrom).
  // A message that could not be stored is refused: no PUBACK, the connection
  // closes, and the publisher sends it again.
  function ackAfterStore (client: Client, packet: PublishPacket, callback: (err: Error | null) => void): void {
    publishFrom(packet, client, err => {
      if (err !== null && err !== undefined) {
        state.hooks.refused?.(client, `QoS 1 publish to ${JSON.stringify(packet.topic.slice(0, 100))} not stored (${err.message}); disconnected`)
        callback(refuse('not stored'))
        return
      }
      routedEarly.add(packet)
      callback(null)
    })
  }

  // A reply taken by the fast lane (reply-tap.ts) gets what Aedes would give a
  // QoS 0 PUBLISH: the checks of handlePublish and of authorizePublish above,
  // the keep-alive refresh, then publishFrom. One that fails a check is left
  // to Aedes, which refuses it as before.
  const takeReply = (client: Client, topic: string, payload: Buffer): boolean => {
    if (topic.includes('+') || topic.includes('#') || checkTopic(topic, topicLimits) !== null) return false
    const internals = client as unknown as AedesClientInternals
    if (internals._keepaliveInterval > 0) internals._keepaliveTimer?.refresh()
    publishFrom({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket, client, noop)
    return true
  }

  aedes.on('subscribe', (subs: Subscription[], client: Client) => {
    for (const s of subs) if ((s.qos as number) !== 128) subscriptions.add(client, s.topic)
  })
  aedes.on('unsubscribe', (topics: string[], client: Client) => {
    for (const t of topics) {
      subscriptions.remove(client, t)
      // Aedes has no UNSUBSCRIBE hook: ill-formed text closes the connection once seen [MQTT-1.5.3-1], [MQTT-1.5.3-2].
      const bad = textViolation(t) ?? (isValidTopicFilter(t) ? null : 'is not a valid topic filter [MQTT-4.7.1-3]')
      if (bad !== null && !client.conn.destroyed) {
        state.hooks.refused?.(client, `unsubscribe: topic filter ${bad}; disconnected`)
        client.conn.destroy()
      }
    }
  })
  // Sessions restored with clean=false get their subscriptions without a 'subscribe' event.
  aedes.on('clientReady', (client: Client) => {
    const held = (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions
    if (held !== undefined) for (const topic of Object.keys(held)) subscriptions.add(client, topic)
  })
  aedes.on('clientDisconnect', (client: Client) => subscriptions.removeOwner(client))

  // The gateway's own QoS 0 requests skip Aedes's router, which spends two
  // setImmediate hops, two packet copies, a series of callbacks and a topic
  // match of its own on each message (measured: ~5% of the gateway's CPU per
  // REST request). Nothing is lost by it: QoS 0 is never stored for offline
  // sessions, a request is never retained [P-2.4], and no other part of the
  // gateway listens for `$req/…` publishes. Requests still wait for the next
  // turn of the event loop and go out together, as Aedes's did: written one
  // by one as they come, they made smaller socket writes and cost more.
  let queued: Array<{ topic: string, payload: Buffer }> = []
  const deliverQueued = (): void => {
    const batch = queued
    queued = []
    const written = new Set<Duplex>()
    for (const { topic, payload } of batch) {
      const packet = { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false } as PublishPacket
      let frame: Buffer | undefined
      subscriptions.forEachMatch(topic, client => {
        if (!client.connected || client.conn.destroyed || client.conn.writableEnded) return
        // The per-delivery check Aedes would make (slow consumers).
        if (state.hooks.allowForward !== undefined && !state.hooks.allowForward(client, packet)) return
        frame ??= qos0PublishFrame(topic, payload)
        client.conn.write(frame)
        written.add(client.conn)
      })
    }
    // This is already the turn's batch: send it now, not a whole loop turn later.
    for (const conn of written) flushNow(conn)
  }
  const queueRequest = (topic: string, payload: Buffer): void => {
    if (queued.push({ topic, payload }) === 1) setImmediate(deliverQueued)
  }

  let tcp: Server | undefined
  const sockets = new Set<Socket>()
  const handle = (conn: Duplex, req?: IncomingMessage): void => {
    if (state.hooks.accept?.(conn, req) === false) {
      conn.destroy()
      return
    }
    const client = aedes.handle(conn, req)
    keepEveryDelivery(client, aedes.id, clustered)
    tapReplies(conn, () => readyForReplies(client), (topic, payload) => takeReply(client, topic, payload))
  }

  return {
    handle,
    aedes,
    subscriptions,
    hooks: state.hooks,
    listenTcp (port, host) {
      // noDelay: PUBACK and reply are back-to-back small writes; Nagle + delayed ACK stalls them (PERF-NOTES 2).
      const onSocket = (socket: Socket): void => {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        batchWrites(socket)
        handle(socket)
      }
      const server = opts.tls === undefined
        ? createServer({ noDelay: true }, onSocket)
        // mqtts: the same broker behind TLS; a handshake must finish within 10 s.
        : createTlsServer({ ...opts.tls, noDelay: true, handshakeTimeout: 10_000 }, onSocket)
      server.on('tlsClientError', (err: Error) => state.hooks.refused?.(null, `TLS handshake failed: ${err.message}`))
      tcp = server
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve(server.address() as AddressInfo)
        })
      })
    },
    publish (topic, payload, qos, retain, cb) {
      if (qos === 0 && !retain && !clustered && topic.startsWith(REQ_PREFIX)) {
        queueRequest(topic, payload)
        cb(null)
        return
      }
      aedes.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, cb)
    },
    async readRetained (topic) {
      const persistence = (aedes as unknown as { persistence: { createRetainedStream: (p: string) => AsyncIterable<PublishPacket> } }).persistence
      for await (const packet of persistence.createRetainedStream(topic)) {
        if (packet.topic === topic) return { payload: Buffer.from(packet.payload), qos: packet.qos }
      }
      return null
    },
    async close () {
      // server.close() calls back only once every connection has ended, so stop
      // accepting first, close the clients, and only then wait for it.
      const server = tcp
      const stopped = server === undefined ? Promise.resolve() : new Promise<void>(resolve => server.close(() => resolve()))
      await new Promise<void>(resolve => aedes.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await stopped
    }
  }
}

/**
 * [P-1.6] `$res/…` is read only by the gateway, and `$inbox/<id>/…` only by the
 * client whose id it names, so nobody can subscribe to someone else's replies.
 */
function subscriptionAllowed (client: Client, sub: Subscription): boolean {
  const topic = sub.topic
  if (topic.charCodeAt(0) !== 36) return true
  if (topic === '$res' || topic.startsWith(RES_PREFIX)) return false
  // [P-10.3] An async result is read by its unguessable handle: no wildcards, so nobody can watch everyone's.
  if (topic === '$result' || topic.startsWith('$result/')) return /^\$result\/[^+#/]+$/.test(topic)
  if (topic === '$inbox' || topic.startsWith(INBOX_PREFIX)) {
    // A client id with a wildcard or "/" in it could otherwise match other inboxes.
    return /^[^+#/]+$/.test(client.id) && topic.startsWith(INBOX_PREFIX + client.id + '/')
  }
  return true
}

/** The parts of an Aedes client the reply fast lane reads (aedes/lib/client.js, handlers/index.js). */
interface AedesClientInternals {
  connackSent: boolean
  connected: boolean
  _keepaliveInterval: number
  _keepaliveTimer: NodeJS.Timeout | null
  /** Packets that came before CONNACK, waiting; null once they were handled. */
  _parser: { _queue: unknown[] | null }
}

/**
 * Replies may skip Aedes's parser once the client is connected and every
 * packet it sent before CONNACK was handled: before that, Aedes holds packets
 * back, and one taken early would overtake them. Should a later Aedes rename
 * these fields, the fast lane stays shut rather than skip the keep-alive
 * refresh (test/integration/reply-fast-lane.test.ts would also say so).
 */
function readyForReplies (client: Client): boolean {
  const c = client as unknown as AedesClientInternals
  return c.connackSent && c.connected && c._parser._queue === null && typeof c._keepaliveInterval === 'number'
}

function noop (): void {}

/**
 * Aedes drops a delivery whose broker counter is not above the last one the
 * client saw, to send overlapping subscriptions' copies once. But a QoS 1
 * message waits for persistence before it is routed, so a QoS 0 message
 * published just after it overtakes it, and the QoS 1 message is then dropped
 * as a "duplicate": lost, with no error anywhere. Pinning the counter the
 * client has seen at 0 turns that check off. Overlapping subscriptions may
 * then each get a copy, which [MQTT-3.3.5-1] allows ("MAY deliver further copies").
 */
function keepEveryDelivery (client: Client, brokerId: string, anyBroker: boolean): void {
  const internals = client as unknown as { duplicates: Record<string, number> }
  // In a cluster the same race happens for messages from every other node, each counted by its own broker id.
  if (anyBroker) internals.duplicates = new Proxy({}, { get: () => 0, set: () => true, deleteProperty: () => true })
  else Object.defineProperty(internals.duplicates, brokerId, { get: () => 0, set: () => {}, configurable: true, enumerable: true })
}
