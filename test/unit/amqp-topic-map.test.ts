import { describe, expect, it } from 'vitest'
import { mqttFilterToBindingKey, mqttToRoutingKey, routingKeyToMqtt } from '../../gateway/amqp/topic-map.js'
import { bridgeFiltersProblem } from '../../gateway/amqp/topic-bridge.js'

describe('MQTT <-> AMQP topic mapping', () => {
  it('maps "/" to "." and back', () => {
    expect(mqttToRoutingKey('sensors/room1/temp')).toBe('sensors.room1.temp')
    expect(routingKeyToMqtt('sensors.room1.temp')).toBe('sensors/room1/temp')
  })

  it('keeps a dotted MQTT level one AMQP word by swapping "." and "/"', () => {
    expect(mqttToRoutingKey('sensors/temp.c/room1')).toBe('sensors.temp/c.room1')
    expect(routingKeyToMqtt('sensors.temp/c.room1')).toBe('sensors/temp.c/room1')
  })

  it('round-trips any topic name, including empty levels and leading or trailing separators', () => {
    for (const t of ['a', '/a', 'a/', 'a//b', 'a.b.c', '.', 'x/y.z/.w/', 'ünï/cödé', 'a b/c*d']) {
      expect(routingKeyToMqtt(mqttToRoutingKey(t))).toBe(t)
    }
  })

  it('refuses routing keys that cannot be MQTT topic names', () => {
    expect(routingKeyToMqtt('')).toBeNull()
    expect(routingKeyToMqtt('a.+.b')).toBeNull()
    expect(routingKeyToMqtt('a.#')).toBeNull()
    expect(routingKeyToMqtt('a\u0000b')).toBeNull()
  })

  it('maps filters: "+" to "*", "#" stays, dotted levels swapped', () => {
    expect(mqttFilterToBindingKey('#')).toBe('#')
    expect(mqttFilterToBindingKey('sensors/+/temp')).toBe('sensors.*.temp')
    expect(mqttFilterToBindingKey('sensors/#')).toBe('sensors.#')
    expect(mqttFilterToBindingKey('+/temp.c/#')).toBe('*.temp/c.#')
  })

  it('refuses filters whose levels hold "*" or "#" that AMQP would read as wildcards', () => {
    expect(mqttFilterToBindingKey('a/b*/c')).toBeNull()
  })

  it('checks configured bridge filters', () => {
    expect(bridgeFiltersProblem(['#'])).toBeUndefined()
    expect(bridgeFiltersProblem(['a/+', 'b/#'])).toBeUndefined()
    expect(bridgeFiltersProblem([])).toBeUndefined()
    expect(bridgeFiltersProblem(['a/#', 'a/#/b'])).toMatch(/"a\/#\/b" is not a valid MQTT topic filter/)
    expect(bridgeFiltersProblem(['$SYS/#'])).toMatch(/never bridged/)
    expect(bridgeFiltersProblem(['a*/b'])).toMatch(/no AMQP equivalent/)
  })
})
