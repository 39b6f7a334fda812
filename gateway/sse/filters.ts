// The topic= filters of GET /events and GET /history: validated as MQTT
// SUBSCRIBE filters are, and authorized by the same grants and reserved
// namespaces [P-15.6].
import type { Grants } from '../../core/grants.js'
import { isValidTopicFilter } from '../../core/topics.js'
import { subscribeAllowed } from '../../core/namespaces.js'
import { checkTopic, type TopicLimits } from '../../core/conformance.js'
import { maySubscribeWith } from '../plugins/auth.js'
import { GatewayError } from '../../core/errors.js'

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
 * [P-1.6] the namespaces' rules for MQTT, for a subscriber with no client id
 * (so no `$inbox` is its own); and `$history`, the MQTT form of what a stream
 * gets anyway [P-16.1], is not for streams.
 */
export function mayRead (grants: Grants, filter: string): boolean {
  if (filter === '$history' || filter.startsWith('$history/')) return false
  return subscribeAllowed(filter, '') && maySubscribeWith(grants, filter)
}

/** 403 RTW_FORBIDDEN for the first filter the grants do not cover. */
export function authorizeFilters (grants: Grants, filters: readonly string[]): void {
  for (const f of filters) {
    if (!mayRead(grants, f)) throw new GatewayError('RTW_FORBIDDEN', `The token does not grant reading ${f}`)
  }
}
