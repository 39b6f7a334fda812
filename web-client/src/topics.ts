// MQTT topic rules the client checks before sending, so that a bad argument is
// a rejected promise rather than a protocol error that drops the connection.

/** A topic name to publish to: non-empty, no wildcards, no NUL [MQTT-3.3.2-2], [MQTT-1.5.3-2]. */
export function isValidTopicName (topic: string): boolean {
  return topic.length > 0 && !/[+#]/.test(topic) && !topic.includes('\u0000')
}

/** A filter: "+" and "#" only as whole levels, "#" only last [MQTT-4.7.1-2], [MQTT-4.7.1-3]. */
export function isValidTopicFilter (filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false
  const levels = filter.split('/')
  return levels.every((l, i) => (l === '#' ? i === levels.length - 1 : l === '+' || !/[+#]/.test(l)))
}

/** Filter matching, including [MQTT-4.7.2-1]: a wildcard first level never matches a "$" topic. */
export function topicMatches (filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}
