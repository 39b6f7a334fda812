// Acks for deliveries on a channel that may already be dead. A delivery tag is
// only valid on the channel that delivered it; once that channel is gone,
// RabbitMQ has requeued the message, and acking it elsewhere would be an error.
import type { Channel, Message } from 'amqplib'

export function ackSafely (ch: Channel, msg: Message): boolean {
  try {
    ch.ack(msg)
    return true
  } catch {
    return false
  }
}

/** Rejects without requeueing, so the message is dead-lettered. */
export function rejectSafely (ch: Channel, msg: Message): boolean {
  try {
    ch.reject(msg, false)
    return true
  } catch {
    return false
  }
}
