// The reserved `$` namespaces and who may use them [P-1.6], [P-10.3].
// Pure: read by the broker's subscribe check.
import { INBOX_PREFIX, RES_PREFIX } from './topics.js'

/** Async results of queued calls (docs/AMQP.md §4), read by their unguessable handle. */
export const RESULT_PREFIX = '$result/'

/**
 * [P-1.6] `$res/…` is read only by the gateway, and `$inbox/<id>/…` only by the
 * client whose id it names, so nobody can subscribe to someone else's replies.
 */
export function subscribeAllowed (filter: string, clientId: string): boolean {
  if (filter.charCodeAt(0) !== 36) return true
  if (filter === '$res' || filter.startsWith(RES_PREFIX)) return false
  // [P-10.3] An async result is read by its unguessable handle: no wildcards, so nobody can watch everyone's.
  if (filter === '$result' || filter.startsWith(RESULT_PREFIX)) return /^\$result\/[^+#/]+$/.test(filter)
  if (filter === '$inbox' || filter.startsWith(INBOX_PREFIX)) {
    // A client id with a wildcard or "/" in it could otherwise match other inboxes.
    return /^[^+#/]+$/.test(clientId) && filter.startsWith(INBOX_PREFIX + clientId + '/')
  }
  return true
}
