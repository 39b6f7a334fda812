// MQTT topics <-> AMQP topic-exchange routing keys (docs/AMQP.md §5). Pure, no I/O.
//
// The level separator swaps: MQTT "/" is AMQP ".", and a "." inside an MQTT
// level becomes "/" inside the AMQP word (and back), so the mapping is
// reversible and a dotted level such as "temp.c" stays ONE level/word:
//   MQTT  sensors/temp.c/room1   <->  AMQP  sensors.temp/c.room1
// Filters map "+" to "*" and "#" to "#", as RabbitMQ's MQTT plugin does. That
// plugin maps only "/" to ".", so a dotted level splits into two words there and
// does not round-trip; for topics without "." both mappings agree.

/** MQTT topic name -> AMQP routing key. */
export function mqttToRoutingKey (topic: string): string {
  let out = ''
  for (let i = 0; i < topic.length; i++) {
    const c = topic[i]
    out += c === '/' ? '.' : c === '.' ? '/' : c
  }
  return out
}

/** AMQP routing key -> MQTT topic name; null when it cannot be one (wildcards, NUL, empty). */
export function routingKeyToMqtt (key: string): string | null {
  if (key.length === 0) return null
  let out = ''
  for (let i = 0; i < key.length; i++) {
    const c = key[i]
    // "+", "#" and NUL are not allowed in an MQTT topic name [MQTT-4.7.3-1], [MQTT-4.7.3-2].
    if (c === '+' || c === '#' || c === '\u0000') return null
    out += c === '.' ? '/' : c === '/' ? '.' : c
  }
  return out
}

/**
 * MQTT topic filter -> AMQP binding key. The filter must already be valid
 * (isValidTopicFilter). A "*" or "#" inside an MQTT level has no wildcard
 * meaning in MQTT but would have one in AMQP, so such filters are refused (null).
 */
export function mqttFilterToBindingKey (filter: string): string | null {
  const levels = filter.split('/')
  const words: string[] = []
  for (const level of levels) {
    if (level === '+') words.push('*')
    else if (level === '#') words.push('#')
    else if (level.includes('*') || level.includes('#')) return null
    else words.push(level.replace(/\./g, '/'))
  }
  return words.join('.')
}
