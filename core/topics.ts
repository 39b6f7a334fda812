// Topic grammar of the $req/$res contract (PROTOCOL.md §1). Pure functions, no I/O.

export const REQ_PREFIX = '$req/'
export const RES_PREFIX = '$res/'
export const INBOX_PREFIX = '$inbox/'
export const RID_LEVEL = '$rid'

// [P-1.2] A service name is a single level of letters, digits, "_" and "-".
const SERVICE_RE = /^[A-Za-z0-9_-]{1,64}$/

/** [P-1.3] A path level is non-empty, has no wildcard or NUL, does not start with "$" and is not "." or "..". */
export function isValidPathLevel (level: string): boolean {
  if (level.length === 0 || level === '.' || level === '..') return false
  if (level.charCodeAt(0) === 36 /* $ */) return false
  for (let i = 0; i < level.length; i++) {
    const c = level.charCodeAt(i)
    if (c === 43 /* + */ || c === 35 /* # */ || c === 0 || c === 47 /* / */) return false
  }
  return true
}

export function isValidService (service: string): boolean {
  return SERVICE_RE.test(service)
}

/** [P-1.3] path is "" or "/a/b"; returns false when any level is invalid. */
export function isValidPath (path: string): boolean {
  if (path === '') return true
  if (path.charCodeAt(0) !== 47) return false
  let start = 1
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 47) {
      if (!isValidPathLevel(path.slice(start, i))) return false
      start = i + 1
    }
  }
  return true
}

/** [P-1.1] `$req/<service><path>` where path is "" or "/level/…". */
export function requestTopic (service: string, path: string): string {
  return REQ_PREFIX + service + path
}

export interface ParsedRequestTopic { service: string, path: string }

/** Splits `$req/<service>/<path…>`; null when the topic is not a valid request topic [P-1.1]. */
export function parseRequestTopic (topic: string): ParsedRequestTopic | null {
  if (!topic.startsWith(REQ_PREFIX)) return null
  const slash = topic.indexOf('/', REQ_PREFIX.length)
  const service = slash === -1 ? topic.slice(REQ_PREFIX.length) : topic.slice(REQ_PREFIX.length, slash)
  const path = slash === -1 ? '' : topic.slice(slash)
  if (!isValidService(service) || !isValidPath(path)) return null
  return { service, path }
}

/** [P-3.2] The plain mirror: `$req` swapped for `$res`, the original project's reply topic. */
export function mirrorTopic (reqTopic: string): string {
  return RES_PREFIX + reqTopic.slice(REQ_PREFIX.length)
}

/** [P-3.1] The reply topic the gateway names in a request: `$res/<service>/$rid/<id>`. */
export function replyTopic (service: string, id: string): string {
  return RES_PREFIX + service + '/' + RID_LEVEL + '/' + id
}

export type ReplyTopic =
  | { kind: 'rid', service: string, id: string }
  | { kind: 'mirror', service: string }

/** Classifies a `$res/…` topic; null when it is not one. */
export function parseReplyTopic (topic: string): ReplyTopic | null {
  if (!topic.startsWith(RES_PREFIX)) return null
  const slash = topic.indexOf('/', RES_PREFIX.length)
  const service = slash === -1 ? topic.slice(RES_PREFIX.length) : topic.slice(RES_PREFIX.length, slash)
  if (service.length === 0) return null
  if (slash !== -1 && topic.startsWith(RID_LEVEL + '/', slash + 1)) {
    const id = topic.slice(slash + 2 + RID_LEVEL.length)
    if (id.length > 0 && id.indexOf('/') === -1) return { kind: 'rid', service, id }
  }
  return { kind: 'mirror', service }
}

/** [P-4.3] The inbox a client may name as replyTo: `$inbox/<clientId>/…`. */
export function isOwnInbox (topic: string, clientId: string): boolean {
  return topic.startsWith(INBOX_PREFIX) &&
    topic.startsWith(clientId + '/', INBOX_PREFIX.length) &&
    topic.length > INBOX_PREFIX.length + clientId.length + 1
}

/**
 * [P-4.3] Where the gateway may answer a caller that named this replyTo: the
 * replyTo itself when it is in the caller's own inbox, or, when it holds a
 * wildcard (refused with 400 [P-4.6]), its part before the first wildcard
 * level, which the caller's `…/#` subscription receives. Null: nowhere safe.
 */
export function answerTopic (replyTo: string, clientId: string): string | null {
  const wild = replyTo.search(/[+#]/)
  if (wild === -1) return isOwnInbox(replyTo, clientId) ? replyTo : null
  const cut = replyTo.slice(0, Math.max(0, replyTo.lastIndexOf('/', wild)))
  return cut === INBOX_PREFIX + clientId || isOwnInbox(cut, clientId) ? cut : null
}

/** A topic name a client may publish to: non-empty, no wildcards, no NUL [MQTT-3.3.2-2], [MQTT-1.5.3-2]. */
export function isValidTopicName (topic: string): boolean {
  if (topic.length === 0 || topic.length > 65535) return false
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    if (c === 43 || c === 35 || c === 0) return false
  }
  return true
}

/** A subscription filter: "+" and "#" only as whole levels, "#" only last [MQTT-4.7.1-2], [MQTT-4.7.1-3]. */
export function isValidTopicFilter (filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535) return false
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    if (level.indexOf('\u0000') !== -1) return false
    if (level.indexOf('#') !== -1 && (level !== '#' || i !== levels.length - 1)) return false
    if (level.indexOf('+') !== -1 && level !== '+') return false
  }
  return true
}

/** MQTT filter matching, including [MQTT-4.7.2-1]: a filter starting with a wildcard never matches a "$" topic. */
export function topicMatches (filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35)) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
