// The reserved `$` namespaces, in one table (PROTOCOL.md §12, [P-12.7]):
// who may publish there, over MQTT and over HTTP, who may subscribe, and
// whether the AMQP bridge mirrors it. Every check that treats a `$` topic
// differently reads this table: the broker's publish and subscribe rules,
// the auth and bridge stages, POST /publish and GET /retained, and the AMQP
// topic bridge. Pure: no I/O.

/**
 * Who may publish on a topic of the namespace.
 * - `granted`: anyone whose token grants publishing to the topic (everyone without auth).
 * - `caller`: MQTT clients whose token may call the service; the bridge takes the request [P-4].
 * - `responder`: MQTT clients whose token may serve the service; the bridge consumes the reply [P-3].
 * - `gateway`: only the gateway; a client's publish is acknowledged and dropped [P-1.7], [P-10.3].
 * - `broker`: only the broker; a client's publish closes its connection [MQTT-3.3.5-2].
 */
export type Publisher = 'granted' | 'caller' | 'responder' | 'gateway' | 'broker'

/**
 * Who may subscribe to a filter in the namespace.
 * - `granted`: anyone whose token grants subscribing to the filter.
 * - `responder`: clients whose token may serve the service named by the second level (any, for `+`/`#`: `serve: ["*"]`) [P-11.6].
 * - `owner`: only the client whose id is the second level, no wildcards there [P-1.6].
 * - `handle`: one exact topic, no wildcards: the unguessable handle is the capability [P-10.3].
 * - `copy`: `<name>/<filter>`, for whoever may subscribe to `<filter>` itself [P-16.1].
 * - `nobody`: only the gateway reads it [P-1.6].
 */
export type Subscriber = 'granted' | 'responder' | 'owner' | 'handle' | 'copy' | 'nobody'

/** [P-16.1] Positioned copies of routed messages, for MQTT subscribers that recover. */
export const HISTORY_PREFIX = '$history/'

export interface Namespace {
  /** The first topic level (`$req`), or `$` for any other `$` topic, or `` for ordinary topics. */
  readonly name: string
  readonly mqttPublish: Publisher
  /** POST /publish may write there (then also under the publish grant). */
  readonly httpPublish: boolean
  readonly subscribe: Subscriber
  /** GET /retained may read there (then also under the subscribe grant). */
  readonly httpRead: boolean
  /** The AMQP bridge may mirror it (amqpBridgeOut/amqpBridgeIn filters) (docs/AMQP.md). */
  readonly amqpMirror: boolean
  /** Publishes there take a token of the client's publishRate bucket. */
  readonly rateLimited: boolean
  /** The PROTOCOL.md clause that says why. */
  readonly clause: string
}

const ordinary: Namespace = { name: '', mqttPublish: 'granted', httpPublish: true, subscribe: 'granted', httpRead: true, amqpMirror: true, rateLimited: true, clause: 'P-8.1' }

/** Every namespace, as PROTOCOL.md §12 lists them. The last two rows are the defaults. */
export const NAMESPACES: readonly Namespace[] = [
  { name: '$req', mqttPublish: 'caller', httpPublish: false, subscribe: 'responder', httpRead: false, amqpMirror: false, rateLimited: true, clause: 'P-4.1' },
  { name: '$res', mqttPublish: 'responder', httpPublish: false, subscribe: 'nobody', httpRead: false, amqpMirror: false, rateLimited: false, clause: 'P-1.6' },
  { name: '$inbox', mqttPublish: 'gateway', httpPublish: false, subscribe: 'owner', httpRead: false, amqpMirror: false, rateLimited: true, clause: 'P-1.7' },
  { name: '$result', mqttPublish: 'gateway', httpPublish: false, subscribe: 'handle', httpRead: true, amqpMirror: false, rateLimited: true, clause: 'P-10.3' },
  { name: '$history', mqttPublish: 'gateway', httpPublish: false, subscribe: 'copy', httpRead: false, amqpMirror: false, rateLimited: true, clause: 'P-16.1' },
  { name: '$SYS', mqttPublish: 'broker', httpPublish: false, subscribe: 'granted', httpRead: false, amqpMirror: false, rateLimited: true, clause: 'P-12.7' },
  // Other `$` topics are ordinary, except that they are never mirrored: `$` is the servers' prefix [MQTT-4.7.2-1].
  { ...ordinary, name: '$', amqpMirror: false, clause: 'P-12.7' },
  ordinary
]

const byName = new Map(NAMESPACES.filter(n => n.name.length > 1).map(n => [n.name, n]))
const otherDollar = NAMESPACES[NAMESPACES.length - 2] as Namespace

/** The namespace of a topic name or filter, by its first level (a `$` level is never a wildcard). */
export function namespaceOf (topic: string): Namespace {
  if (topic.charCodeAt(0) !== 36) return ordinary
  const slash = topic.indexOf('/')
  return byName.get(slash === -1 ? topic : topic.slice(0, slash)) ?? otherDollar
}

/** The second topic level, or undefined when there is none. */
function secondLevel (topic: string): string | undefined {
  const first = topic.indexOf('/')
  if (first === -1) return undefined
  const second = topic.indexOf('/', first + 1)
  return second === -1 ? topic.slice(first + 1) : topic.slice(first + 1, second)
}

const HAS_WILDCARD_OR_SLASH = /[+#/]/

/**
 * The broker's own subscribe rule: `nobody`, `owner` and `handle` decided
 * here, and that a `copy` names a filter; `granted`, `responder` and the
 * filter inside a `copy` are for the auth stage to decide.
 */
export function subscribeAllowed (filter: string, clientId: string): boolean {
  const ns = namespaceOf(filter)
  switch (ns.subscribe) {
    case 'nobody': return false
    // A client id with a wildcard or "/" in it could otherwise match other inboxes.
    case 'owner': return !HAS_WILDCARD_OR_SLASH.test(clientId) && clientId.length > 0 && filter.startsWith(`${ns.name}/${clientId}/`)
    case 'handle': {
      const handle = secondLevel(filter)
      return handle !== undefined && handle.length > 0 && !HAS_WILDCARD_OR_SLASH.test(handle) && filter.length === ns.name.length + 1 + handle.length
    }
    // The copied filter must be one the client may hold itself: `$history/$res/#` is as private as `$res/#`.
    case 'copy': return filter.length > ns.name.length + 1 && filter.charCodeAt(ns.name.length) === 47 && subscribeAllowed(filter.slice(ns.name.length + 1), clientId)
    default: return true
  }
}

/**
 * [P-16.1] A routed message gets a positioned `$history/` copy only in a
 * namespace anyone granted may read. A copy of a reply, an inbox message, a
 * request or an async result would reach a `$history/#` subscriber, whom the
 * original's own rule would refuse.
 */
export function historyCopied (topic: string): boolean {
  return topic.charCodeAt(0) !== 36 || namespaceOf(topic).subscribe === 'granted'
}

/** POST /publish may write this topic (the token's grants still apply) [P-8.2]. */
export function httpPublishAllowed (topic: string): boolean {
  return namespaceOf(topic).httpPublish
}

/** GET /retained may read this topic (the token's grants still apply) [P-8.2]. */
export function httpReadAllowed (topic: string): boolean {
  const ns = namespaceOf(topic)
  return ns.httpRead && (ns.subscribe !== 'handle' || subscribeAllowed(topic, ''))
}

/** The AMQP bridge may mirror topics this filter matches. */
export function amqpMirrorAllowed (filter: string): boolean {
  return namespaceOf(filter).amqpMirror
}
