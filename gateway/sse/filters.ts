// The topic= filters of GET /events and GET /history: validated as MQTT
// SUBSCRIBE filters are, and authorized by the same grants and reserved
// namespaces [P-14.6].
import type { Grants } from '../core/grants.js'
import { INBOX_PREFIX, RES_PREFIX, isValidTopicFilter } from '../core/topics.js'
import { checkTopic, type TopicLimits } from '../../broker/conformance.js'
import { maySubscribeWith } from '../plugins/auth.js'
import { GatewayError } from '../errors.js'

/** The repeated `topic` query parameter, checked; throws 400 RTW_BAD_TOPIC or RTW_BAD_REQUEST. */
export function parseFilters (query: unknown, limits: TopicLimits, max: number): string[] {
  const raw = (query as Record<string, unknown>).topic
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  if (list.length === 0) throw new GatewayError('RTW_BAD_REQUEST', 'Name at least one topic filter: ?topic=<filter>')
  if (list.length > max) throw new GatewayError('RTW_BAD_REQUEST', `At most ${max} topic filters per stream (sseMaxTopics)`)
  const filters: string[] = []
  for (const f of list) {
    if (typeof f !== 'string' || !isValidTopicFilter(f) || f.includes('\uFFFD')) throw new GatewayError('RTW_BAD_TOPIC', `Invalid topic filter ${JSON.stringify(String(f).slice(0, 100))}`)
    const over = checkTopic(f, limits)
    if (over !== null) throw new GatewayError('RTW_BAD_TOPIC', `The ${over.reason}`)
    if (!filters.includes(f)) filters.push(f)
  }
  return filters
}

/**
 * [P-1.6] as for MQTT: `$res` is the gateway's, and an `$inbox` belongs to one
 * MQTT client id, which an HTTP stream does not have; `$history` is the MQTT
 * form of what a stream gets anyway; a `$result` is read by its handle alone.
 */
export function mayRead (grants: Grants, filter: string): boolean {
  if (filter.charCodeAt(0) === 36) {
    if (filter === '$res' || filter.startsWith(RES_PREFIX) || filter === '$inbox' || filter.startsWith(INBOX_PREFIX)) return false
    if (filter === '$history' || filter.startsWith('$history/')) return false
    if (filter === '$result' || filter.startsWith('$result/')) return /^\$result\/[^+#/]+$/.test(filter)
  }
  return maySubscribeWith(grants, filter)
}

/** 403 RTW_FORBIDDEN for the first filter the grants do not cover. */
export function authorizeFilters (grants: Grants, filters: readonly string[]): void {
  for (const f of filters) {
    if (!mayRead(grants, f)) throw new GatewayError('RTW_FORBIDDEN', `The token does not grant reading ${f}`)
  }
}
