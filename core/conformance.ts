// Checks the MQTT 3.1.1 specification requires and Aedes/mqtt-packet skip, and
// the configured topic limits. Pure functions over already-decoded strings.
//
// mqtt-packet decodes every UTF-8 string with Buffer#toString, which turns an
// ill-formed sequence (overlong forms, surrogates D800-DFFF, truncated
// sequences) into U+FFFD and passes U+0000 through. So after decoding,
// "ill-formed" can only be seen as U+FFFD: a string holding U+FFFD is treated
// as ill-formed, which also refuses a literal, well-formed U+FFFD. That is the
// documented price of not re-reading the raw bytes on every PUBLISH.

/** Why a decoded MQTT string must close the connection, or null [MQTT-1.5.3-1], [MQTT-1.5.3-2]. */
export function textViolation (s: string): string | null {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0) return 'contains U+0000 [MQTT-1.5.3-2]'
    if (c === 0xfffd) return 'is not well-formed UTF-8 [MQTT-1.5.3-1]'
  }
  return null
}

export interface TopicLimits {
  /** Longest topic or filter, in UTF-8 bytes. */
  maxTopicLength: number
  /** Most levels ("/"-separated parts) in a topic or filter. */
  maxTopicLevels: number
}

export type TopicVerdict = null | { close: boolean, reason: string }

/**
 * One pass over a topic name or filter: ill-formed text must close the
 * connection; a topic over the configured limits is refused (the caller
 * decides how: PUBLISH closes, SUBSCRIBE answers 0x80). O(length), no allocation
 * unless the topic is long enough to need its UTF-8 length counted.
 */
export function checkTopic (topic: string, limits: TopicLimits): TopicVerdict {
  let levels = 1
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    if (c === 47) levels++
    else if (c === 0) return { close: true, reason: 'topic contains U+0000 [MQTT-1.5.3-2]' }
    else if (c === 0xfffd) return { close: true, reason: 'topic is not well-formed UTF-8 [MQTT-1.5.3-1]' }
  }
  // A UTF-16 unit is 1 to 3 UTF-8 bytes, so the exact count is needed only in between.
  if (topic.length > limits.maxTopicLength ||
    (topic.length * 3 > limits.maxTopicLength && Buffer.byteLength(topic) > limits.maxTopicLength)) {
    return { close: false, reason: `topic is longer than maxTopicLength (${limits.maxTopicLength} bytes)` }
  }
  if (levels > limits.maxTopicLevels) return { close: false, reason: `topic has ${levels} levels, more than maxTopicLevels (${limits.maxTopicLevels})` }
  return null
}

interface ConnectFields {
  clientId?: string
  username?: string
  password?: Buffer
  will?: { topic?: string, qos?: number } | null
}

// Aedes closes the connection for a SUBSCRIBE or UNSUBSCRIBE filter over its
// (qlobber's) ceiling of 100 levels, before any hook runs. Such a filter is
// swapped for a placeholder under this prefix first (one per position, as
// Aedes merges equal filters), which the broker refuses with SUBACK 0x80 (and
// which unsubscribes nothing), so the connection stays [P-12.3].
export const TOO_DEEP_FILTER = '$rtw/filter-over-100-levels/'
const AEDES_MAX_LEVELS = 100

function levelsOver (filter: string, max: number): boolean {
  let levels = 1
  for (let i = 0; i < filter.length; i++) if (filter.charCodeAt(i) === 47 && ++levels > max) return true
  return false
}

/** Swaps each over-deep filter of a SUBSCRIBE or UNSUBSCRIBE for TOO_DEEP_FILTER, in place. */
export function capFilterDepth (packet: { cmd: string, subscriptions?: Array<{ topic: string }>, unsubscriptions?: string[] }): void {
  if (packet.cmd === 'subscribe' && packet.subscriptions !== undefined) {
    const subs = packet.subscriptions
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i] as { topic: string }
      if (typeof s.topic === 'string' && levelsOver(s.topic, AEDES_MAX_LEVELS)) s.topic = TOO_DEEP_FILTER + String(i)
    }
  } else if (packet.cmd === 'unsubscribe' && packet.unsubscriptions !== undefined) {
    const u = packet.unsubscriptions
    for (let i = 0; i < u.length; i++) if (typeof u[i] === 'string' && levelsOver(u[i] as string, AEDES_MAX_LEVELS)) u[i] = TOO_DEEP_FILTER + String(i)
  }
}

/** Why a CONNECT must close the connection, or null: ill-formed text in its strings, or a Will Topic no PUBLISH could use. */
export function connectViolation (packet: ConnectFields, limits: TopicLimits): string | null {
  const id = packet.clientId === undefined ? null : textViolation(packet.clientId)
  if (id !== null) return `client id ${id}`
  const user = packet.username === undefined ? null : textViolation(packet.username)
  if (user !== null) return `user name ${user}`
  if (packet.password !== undefined && packet.username === undefined) return 'has a password but no user name [MQTT-3.1.2-22]'
  const topic = packet.will?.topic
  if (packet.will?.qos === 3) return 'Will QoS is 3 [MQTT-3.1.2-14]'
  if (topic !== undefined) {
    // The Will is published as a PUBLISH would be, so the same rules apply [MQTT-3.1.2-14], [MQTT-3.3.2-2].
    if (topic.length === 0 || topic.includes('+') || topic.includes('#')) return 'Will Topic is not a valid topic name'
    const bad = checkTopic(topic, limits)
    if (bad !== null) return `Will Topic: ${bad.reason}`
  }
  return null
}
