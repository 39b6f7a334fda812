// The MQTT<->AMQP mirror on a topic exchange, amq.topic by default (docs/AMQP.md §5).
//
// Out: every MQTT publish (from clients or the HTTP publish API) on a topic that
// matches an "out" filter and does not start with "$" is published to the
// exchange with the mapped routing key. In: a per-node queue bound with the
// mapped "in" filters delivers AMQP messages to MQTT subscribers.
//
// No loops: a message crosses between the two sides at most once.
//  - What this node injects into MQTT is remembered (by payload Buffer
//    identity) and never mirrored back out.
//  - What this node mirrors out carries x-rtw-origin=<node id>, and comes back
//    in through its own bridge queue, where it is skipped: its MQTT
//    subscribers already had it. Other gateway nodes do deliver it, so the
//    exchange also links the MQTT sides of several gateways.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib'
import type { AmqpConnection } from '../../net/amqp/connection.js'
import { mqttFilterToBindingKey, mqttToRoutingKey, routingKeyToMqtt } from './topic-map.js'
import { MQTT_QOS_HEADER, MQTT_RETAIN_HEADER, ORIGIN_HEADER, declareBridgeQueue } from '../../net/amqp/topology.js'
import { isValidTopicFilter, topicMatches } from '../../core/topics.js'
import { amqpMirrorAllowed } from '../../core/namespaces.js'
import { ackSafely, rejectSafely } from '../../net/amqp/acks.js'

export interface MqttSide {
  publish: (topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, cb: (err?: Error | null) => void) => void
}

export interface TopicBridgeOptions {
  exchange: string
  nodeId: string
  /**
   * The cluster this node belongs to (docs/CLUSTER.md §5): its nodes then
   * mirror out as one origin and share one bridge-in queue, so a message
   * crosses once, not once per node.
   */
  clusterId?: string
  /** MQTT filters mirrored out; empty: nothing is. */
  outFilters: readonly string[]
  /** MQTT filters delivered in; empty: nothing is. */
  inFilters: readonly string[]
  /** Larger AMQP messages are not delivered to MQTT (dead-lettered). */
  maxMessageBytes: number
  onReject: (reason: InboundRejection, detail: string) => void
}

export type InboundRejection = 'bad-topic' | 'too-large' | 'publish-failed'

/** Why a list of bridge filters is unusable, or undefined when every one can be bridged. */
export function bridgeFiltersProblem (filters: readonly string[]): string | undefined {
  for (const f of filters) {
    if (!isValidTopicFilter(f)) return `${JSON.stringify(f)} is not a valid MQTT topic filter`
    if (!amqpMirrorAllowed(f)) return `${JSON.stringify(f)}: "$" topics are the gateway's own and are never bridged`
    if (mqttFilterToBindingKey(f) === null) return `${JSON.stringify(f)}: "*" or "#" inside a level has no AMQP equivalent`
  }
  return undefined
}

export class TopicBridge {
  private readonly injected = new WeakSet<Buffer>()
  /** AMQP messages waiting to be published into MQTT, one at a time (see deliverNext). */
  private readonly inbound: Array<{ ch: ConfirmChannel, msg: ConsumeMessage, topic: string, qos: 0 | 1, retain: boolean }> = []
  private delivering = false
  private readonly matchAll: boolean
  readonly counters = {
    out: 0,
    outFailed: 0,
    outSkippedDown: 0,
    in: 0,
    inOwnEcho: 0,
    rejected: { 'bad-topic': 0, 'too-large': 0, 'publish-failed': 0 } as Record<InboundRejection, number>
  }

  constructor (
    private readonly conn: AmqpConnection,
    private readonly mqtt: MqttSide,
    private readonly opts: TopicBridgeOptions
  ) {
    this.matchAll = opts.outFilters.includes('#')
    this.origin = opts.clusterId ?? opts.nodeId
  }

  /** Who x-rtw-origin names: this node, or its whole cluster. */
  private readonly origin: string

  get mirrorsOut (): boolean {
    return this.opts.outFilters.length > 0
  }

  async setup (ch: ConfirmChannel): Promise<void> {
    // amq.* exchanges exist on every vhost and may not be declared, only checked.
    if (this.opts.exchange.startsWith('amq.')) await ch.checkExchange(this.opts.exchange)
    else await ch.assertExchange(this.opts.exchange, 'topic', { durable: true })
    if (this.opts.inFilters.length === 0) return
    const queue = await declareBridgeQueue(ch, this.origin, this.opts.clusterId !== undefined)
    for (const f of this.opts.inFilters) await ch.bindQueue(queue, this.opts.exchange, mqttFilterToBindingKey(f) as string)
    await ch.prefetch(256)
    await ch.consume(queue, msg => this.onAmqpMessage(ch, msg), { noAck: false })
  }

  /** Aedes 'publish' event: every message routed on the MQTT side. */
  onMqttPublish (topic: string, payload: Buffer, qos: number, retain: boolean): void {
    // The first test is the cheap one: no "$" namespace is mirrored (core/namespaces.ts).
    if (topic.charCodeAt(0) === 36 && !amqpMirrorAllowed(topic)) return
    if (this.injected.has(payload)) return
    if (!this.matchAll && !this.opts.outFilters.some(f => topicMatches(f, topic))) return
    if (!this.conn.up) {
      // Live traffic is not queued while RabbitMQ is away, as MQTT does not queue QoS 0 for absent subscribers.
      this.counters.outSkippedDown++
      return
    }
    const headers: Record<string, unknown> = { [ORIGIN_HEADER]: this.origin, [MQTT_QOS_HEADER]: qos }
    if (retain) headers[MQTT_RETAIN_HEADER] = true
    this.conn.publish(this.opts.exchange, mqttToRoutingKey(topic), payload, { persistent: qos > 0, headers }, err => {
      if (err === null) this.counters.out++
      else this.counters.outFailed++
    })
  }

  private onAmqpMessage (ch: ConfirmChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      ch.close().catch(() => {})
      return
    }
    const headers = msg.properties.headers ?? {}
    // Mirrored out by this node (or, in a cluster, any of its nodes): its MQTT subscribers had it already.
    if (headers[ORIGIN_HEADER] === this.origin) {
      this.counters.inOwnEcho++
      ackSafely(ch, msg)
      return
    }
    const topic = routingKeyToMqtt(msg.fields.routingKey)
    if (topic === null || !amqpMirrorAllowed(topic)) {
      this.reject(ch, msg, 'bad-topic', `routing key ${JSON.stringify(msg.fields.routingKey.slice(0, 200))} is not a deliverable MQTT topic`)
      return
    }
    if (msg.content.length > this.opts.maxMessageBytes) {
      this.reject(ch, msg, 'too-large', `${msg.content.length} bytes on ${topic.slice(0, 200)}`)
      return
    }
    const hq = headers[MQTT_QOS_HEADER]
    const qos: 0 | 1 = hq === 0 || hq === 1 ? hq : hq === 2 ? 1 : msg.properties.deliveryMode === 2 ? 1 : 0
    const retain = headers[MQTT_RETAIN_HEADER] === true
    this.inbound.push({ ch, msg, topic, qos, retain })
    if (!this.delivering) this.deliverNext()
  }

  /**
   * Publishes into MQTT one message at a time, in arrival order. Aedes drops a
   * message as a duplicate when a later one (higher broker counter) reached the
   * subscriber first, and a QoS 1 message takes longer (it is stored first) than
   * a QoS 0 one published right after it; one at a time, none overtakes another.
   */
  private deliverNext (): void {
    const next = this.inbound.shift()
    if (next === undefined) {
      this.delivering = false
      return
    }
    this.delivering = true
    const { ch, msg, topic, qos, retain } = next
    const payload = msg.content
    this.injected.add(payload)
    this.mqtt.publish(topic, payload, qos, retain, err => {
      if (err) {
        this.reject(ch, msg, 'publish-failed', `${topic.slice(0, 200)}: ${err.message}`)
      } else {
        this.counters.in++
        ackSafely(ch, msg)
      }
      this.deliverNext()
    })
  }

  private reject (ch: ConfirmChannel, msg: ConsumeMessage, reason: InboundRejection, detail: string): void {
    this.counters.rejected[reason]++
    this.opts.onReject(reason, detail)
    rejectSafely(ch, msg)
  }
}
