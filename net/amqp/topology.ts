// Names and arguments of everything the gateway and its workers declare in
// RabbitMQ (docs/AMQP.md §1). Both sides declare through these functions, so
// the arguments always agree: a queue redeclared with different arguments
// would close the channel with PRECONDITION_FAILED.
import type { Channel } from 'amqplib'

/** Where rejected, malformed and expired messages go (a fanout exchange and one queue). */
export const DEAD_LETTER_EXCHANGE = 'rtw.dead'
export const DEAD_LETTER_QUEUE = 'rtw.dead'
/** Dead letters are kept for a day, at most 100,000 of them, oldest dropped first. */
const DEAD_LETTER_ARGS = { 'x-message-ttl': 86_400_000, 'x-max-length': 100_000, 'x-overflow': 'drop-head' }

/** Header on every message the MQTT→AMQP mirror publishes: the gateway node it came from. */
export const ORIGIN_HEADER = 'x-rtw-origin'
export const MQTT_QOS_HEADER = 'x-mqtt-qos'
export const MQTT_RETAIN_HEADER = 'x-mqtt-retain'
/** Header on queued requests: the MQTT request topic ($req/<service>/<path…>). */
export const TOPIC_HEADER = 'x-rtw-topic'

/** The durable work queue of a queued service. */
export function requestQueueName (service: string): string {
  return `rtw.req.${service}`
}

/** A gateway node's own reply queue. */
export function replyQueueName (nodeId: string): string {
  return `rtw.reply.${nodeId}`
}

/**
 * The queue for AMQP→MQTT bridge traffic: a node's own, or in a cluster one
 * that its nodes share, so that each message is delivered into MQTT once
 * (it reaches every node's subscribers through Redis) rather than once per node.
 */
export function bridgeQueueName (owner: string, shared = false): string {
  return shared ? `rtw.mqtt.cluster.${owner}` : `rtw.mqtt.${owner}`
}

export async function declareDeadLetter (ch: Channel): Promise<void> {
  await ch.assertExchange(DEAD_LETTER_EXCHANGE, 'fanout', { durable: true })
  await ch.assertQueue(DEAD_LETTER_QUEUE, { durable: true, arguments: DEAD_LETTER_ARGS })
  await ch.bindQueue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, '')
}

/** Durable, survives broker restarts; a rejected or expired request is dead-lettered. */
export async function declareRequestQueue (ch: Channel, service: string): Promise<string> {
  const name = requestQueueName(service)
  await ch.assertQueue(name, { durable: true, arguments: { 'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE } })
  return name
}

/**
 * Durable, so replies published while the gateway was reconnecting wait for it,
 * including across a RabbitMQ restart. Node ids are random per process, so a
 * queue whose gateway is gone is deleted after `idleMs` without consumers.
 */
export async function declareReplyQueue (ch: Channel, nodeId: string, idleMs: number): Promise<string> {
  const name = replyQueueName(nodeId)
  await ch.assertQueue(name, {
    durable: true,
    arguments: { 'x-expires': idleMs, 'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE }
  })
  return name
}

/**
 * Live traffic only, like MQTT QoS 0 subscriptions of a clean session: exclusive
 * to the connection and bounded, so a stalled gateway cannot fill RabbitMQ.
 */
export async function declareBridgeQueue (ch: Channel, owner: string, shared = false): Promise<string> {
  const name = bridgeQueueName(owner, shared)
  await ch.assertQueue(name, {
    // Shared: every node of the cluster consumes it, each message going to one of them; gone with the last.
    exclusive: !shared,
    autoDelete: true,
    durable: false,
    arguments: { 'x-max-length': 100_000, 'x-overflow': 'drop-head', 'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE }
  })
  return name
}
