// The one place where Aedes's callback hooks are adapted to the pipeline
// (pipeline.ts): each Aedes hook runs the broker's own conformance checks,
// then the pipeline's stages for that event. Also keeps the index of held
// subscriptions that "is anyone listening" answers read.
import { Aedes, type AedesOptions, type Client, type PublishPacket, type Subscription } from 'aedes'
import { SubscriptionIndex } from '../core/subscriptions.js'
import { isValidTopicFilter } from '../core/topics.js'
import { namespaceOf, subscribeAllowed } from '../core/namespaces.js'
import { checkTopic, connectViolation, textViolation, TOO_DEEP_FILTER, type TopicLimits } from '../core/conformance.js'
import { aroundEachRoute, clientById, heldFilters } from './internals.js'
import type { Pipeline } from './pipeline.js'
import type { Counters } from './counters.js'
import { ThrottledPublishes } from './throttled.js'
import { OrderedPublishes } from './ordered.js'

export type Route = (packet: PublishPacket, client: Client | null, done: (err?: Error | null) => void) => void

export interface AdapterOptions {
  concurrency: number
  drainTimeoutMs: number
  topicLimits: TopicLimits
  /** Passed to Aedes as they are (durable or shared state, docs/ARCHITECTURE.md "Seams"). */
  persistence?: AedesOptions['persistence']
  mq?: AedesOptions['mq']
  /** Acknowledge a QoS 1 PUBLISH only once it was routed, and so stored (durable persistence; see below). */
  ackAfterStore?: boolean
  counters: Counters
  /** The pipeline in force now; read on every event, so broker.use() takes effect at once. */
  pipeline: () => Pipeline
  /** A refusal: counts it and logs it (rate-limited). */
  refused: (client: Client | null, what: string) => void
}

export interface Adapted {
  aedes: Aedes
  subscriptions: SubscriptionIndex<Client>
  /** Routes a client's PUBLISH through the throttle and publish stages, then Aedes's router (the fast lanes call this too). */
  route: Route
}

/** [P-12.8] The longest client id accepted, in UTF-8 bytes (EMQX and Mosquitto bound it too). */
export const MAX_CLIENT_ID_BYTES = 256

// Tells Aedes's clientError listeners that the reason was logged already.
const refuse = (reason: string): Error => Object.assign(new Error(reason), { alreadyLogged: true })
type AuthError = Error & { returnCode: number }
const connackError = (message: string, returnCode: number, alreadyLogged: boolean): AuthError =>
  Object.assign(new Error(message), { returnCode, alreadyLogged })

export async function adaptAedes (opts: AdapterOptions): Promise<Adapted> {
  const { topicLimits, counters, pipeline } = opts
  const report = opts.refused
  const subscriptions = new SubscriptionIndex<Client>()
  // [MQTT-3.1.3-8] an empty ClientId with CleanSession 0 gets CONNACK 0x02; Aedes would invent an id.
  const emptyIdWithSession = new WeakSet<Client>()
  // QoS 1 PUBLISHes routed, and so stored, before Aedes acknowledged them (ackAfterStore).
  const routedEarly = new WeakSet<PublishPacket>()

  const aedes = await Aedes.createBroker({
    concurrency: opts.concurrency,
    drainTimeout: opts.drainTimeoutMs,
    // With a shared router (a cluster), a node silent for three heartbeats is dead and a live one publishes its clients' wills.
    heartbeatInterval: opts.mq === undefined ? 60_000 : 2_000,
    // A socket that sends no CONNECT is closed after this long (Aedes's default is 30 s), so idle floods cost little.
    connectTimeout: 10_000,
    ...(opts.persistence === undefined ? {} : { persistence: opts.persistence }),
    ...(opts.mq === undefined ? {} : { mq: opts.mq }),
    authorizePublish (client, packet, callback) {
      // Ill-formed text closes the connection [MQTT-1.5.3-1], [MQTT-1.5.3-2]; so does a topic over the
      // limits: MQTT 3.1.1 has no negative PUBACK, and [MQTT-3.3.5-2] allows closing instead.
      const bad = checkTopic(packet.topic, topicLimits)
      if (bad !== null) {
        report(client, `publish to ${JSON.stringify(packet.topic.slice(0, 100))}: ${bad.reason}; disconnected`)
        callback(refuse(bad.reason))
        return
      }
      // [MQTT-2.3.1-1] a QoS 1 or 2 PUBLISH carries a non-zero Packet Identifier.
      if (packet.qos > 0 && packet.messageId === 0) {
        report(client, 'PUBLISH with Packet Identifier 0 [MQTT-2.3.1-1]; disconnected')
        callback(refuse('Packet Identifier 0'))
        return
      }
      // [MQTT-3.3.2-2] wildcards are already refused by Aedes; $SYS is the broker's own [P-12.7].
      if (packet.topic.charCodeAt(0) === 36 && namespaceOf(packet.topic).mqttPublish === 'broker') {
        report(client, `publish to ${JSON.stringify(packet.topic.slice(0, 100))}: only the broker publishes there; disconnected`)
        callback(refuse('reserved topic'))
        return
      }
      if (opts.ackAfterStore === true && packet.qos === 1 && client !== null) {
        ackAfterStore(client, packet, callback)
        return
      }
      callback(null)
    },
    preConnect (client, packet, callback) {
      const bad = connectViolation(packet, topicLimits)
      if (bad !== null) {
        report(null, `CONNECT ${bad}; disconnected`)
        callback(refuse(bad), false)
        return
      }
      if (packet.clientId === '' && packet.clean === false) emptyIdWithSession.add(client)
      const ok = pipeline().connect(client)
      callback(ok ? null : new Error('connection refused'), ok)
    },
    authenticate (client, username, password, callback) {
      type Err = Parameters<typeof callback>[0]
      if (emptyIdWithSession.has(client)) {
        report(client, 'CONNECT with an empty ClientId and CleanSession 0 [MQTT-3.1.3-8]; CONNACK 0x02')
        callback(connackError('identifier rejected', 2, true) as Err, false)
        return
      }
      // [P-12.8] [MQTT-3.1.3-5] lets a server refuse a client id it does not accept: CONNACK 0x02.
      // The id itself is not logged: it may be 64 KB.
      const idBytes = Buffer.byteLength(client.id)
      if (idBytes > MAX_CLIENT_ID_BYTES) {
        report(null, `CONNECT with a client id of ${idBytes} bytes (at most ${MAX_CLIENT_ID_BYTES}); CONNACK 0x02`)
        callback(connackError('identifier rejected', 2, true) as Err, false)
        return
      }
      const stages = pipeline().authenticate
      if (stages === undefined) { callback(null, true); return }
      stages(client, username, password).then(code => {
        if (code === 0) callback(null, true)
        // alreadyLogged: the stage logged the reason; Aedes re-emits this as clientError.
        else callback(connackError('not authorized', code, true) as Err, false)
      }, () => callback(connackError('authentication failed', 3, false) as Err, false))
    },
    authorizeForward (client, packet) {
      const deliver = pipeline().deliver
      if (deliver !== undefined && !deliver(client, packet)) return null
      counters.sent[packet.qos]++
      return packet
    },
    authorizeSubscribe (client, sub, callback) {
      // [MQTT-4.7.1-2], [MQTT-4.7.1-3] "+" and "#" occupy whole levels; Aedes lets "a+" through.
      if (!isValidTopicFilter(sub.topic)) {
        report(client, `subscribe: ${JSON.stringify(sub.topic.slice(0, 100))} is not a valid topic filter; disconnected`)
        callback(refuse('invalid topic filter'), null)
        return
      }
      if (sub.topic.startsWith(TOO_DEEP_FILTER)) {
        report(client, 'subscribe: a filter of more than 100 levels; SUBACK 0x80 [P-12.3]')
        callback(null, null)
        return
      }
      const bad = checkTopic(sub.topic, topicLimits)
      if (bad?.close === true) {
        report(client, `subscribe: ${bad.reason}; disconnected`)
        callback(refuse(bad.reason), null)
        return
      }
      const allowed = bad === null && subscribeAllowed(sub.topic, client.id) && pipeline().subscribe(client, sub.topic)
      if (!allowed) report(client, `subscribe to ${JSON.stringify(sub.topic.slice(0, 100))}${bad === null ? '' : ': ' + bad.reason}`)
      // null negates just this subscription: SUBACK 0x80 [MQTT-3.9.3], the connection stays.
      callback(null, allowed ? sub : null)
    }
  })

  const mq = opts.mq
  if (mq !== undefined) {
    // Aedes learns of another node from its heartbeats only, the first one
    // 2 s after that node starts: until then the other nodes' will check took
    // the newcomer for dead and published the wills of its live clients. Its
    // birth message (sent at start) counts as its first heartbeat here.
    const brokers = aedes.brokers as Record<string, number>
    mq.on('$SYS/+/birth', (packet: { payload: unknown }, done: () => void) => {
      brokers[String(packet.payload)] = Date.now()
      done()
    })
  }

  // Consuming at publish time rather than in authorizePublish lets the client
  // keep its PUBACK while the packet itself is taken by a stage.
  const routePublish = aedes.publish.bind(aedes) as unknown as Route
  const ordered = new OrderedPublishes(routePublish)
  // Observers are told as each publish is routed, not in Aedes's `published`
  // hook: that runs only once every subscriber's write completed, so a
  // message with a slow or busy subscriber was observed after later ones
  // without (history positions, SSE streams out of the order it was sent in).
  aroundEachRoute(aedes, packet => { pipeline().published?.(packet, clientById(aedes, packet.clientId)) }, packet => { ordered.routed(packet) })
  const consumeOrRoute: Route = (packet, client, done) => {
    if (client === null) return routePublish(packet, null, done)
    if (pipeline().publish(client, packet)) {
      done?.(null)
      return
    }
    ordered.route(packet, client, done)
  }
  const throttled = new ThrottledPublishes(() => pipeline().throttle, consumeOrRoute, () => { counters.limits.publishesDelayed++ })
  const route: Route = function (packet, client, done) {
    if (typeof client === 'function') return routePublish(packet, null, client)
    // Routed already, before its PUBACK (ackAfterStore): counted, throttled and stored then.
    if (routedEarly.has(packet)) {
      routedEarly.delete(packet)
      done?.(null)
      return
    }
    if (client === null || client === undefined) return routePublish(packet, null, done)
    counters.received[packet.qos]++
    throttled.route(packet, client, done)
  }
  ;(aedes as unknown as { publish: Route }).publish = route

  // Aedes writes PUBACK before it routes a QoS 1 PUBLISH (aedes/lib/handlers/publish.js),
  // so a crash between the two would lose a message its publisher was told was
  // taken. With durable state the message is routed, and so stored for every
  // offline session and as a retained value, last thing before the PUBACK;
  // Aedes's own routing of it afterwards is then skipped (route, above). One
  // that could not be stored gets no PUBACK: the connection closes, and the
  // publisher sends it again.
  function ackAfterStore (client: Client, packet: PublishPacket, callback: (err: Error | null) => void): void {
    route(packet, client, err => {
      if (err !== null && err !== undefined) {
        report(client, `QoS 1 publish to ${JSON.stringify(packet.topic.slice(0, 100))} not stored (${err.message}); disconnected`)
        callback(refuse('not stored'))
        return
      }
      routedEarly.add(packet)
      callback(null)
    })
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
        report(client, `unsubscribe: topic filter ${bad}; disconnected`)
        client.conn.destroy()
      }
    }
    pipeline().unsubscribe(client, topics)
  })
  // Sessions restored with clean=false get their subscriptions without a 'subscribe' event.
  aedes.on('clientReady', (client: Client) => {
    for (const topic of heldFilters(client)) subscriptions.add(client, topic)
  })
  aedes.on('clientDisconnect', (client: Client) => {
    subscriptions.removeOwner(client)
    pipeline().disconnect(client)
  })
  return { aedes, subscriptions, route }
}
