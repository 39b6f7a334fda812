// The Server-Sent Events wire format of GET /events (PROTOCOL.md §15). Pure: no I/O.
import { isUtf8 } from 'node:buffer'
import { formatPosition, type Position } from './history.js'

export interface LiveMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  /** Set for messages the history recorded [P-14.2]. */
  readonly position?: Position
}

export interface MessageFields {
  topic: string
  payload: string
  encoding?: 'base64'
  qos: number
  retain?: true
}

/**
 * [P-15.3] A message as JSON fields: a UTF-8 payload as a string, any other as
 * base64; `retain` only on retained values sent first. Also GET /history's [P-16.2].
 */
export function messageFields (topic: string, payload: Buffer, qos: number, retain: boolean): MessageFields {
  const text = isUtf8(payload)
  // Built in this order: the fields' order is the JSON's.
  const body: MessageFields = text ? { topic, payload: payload.toString('utf8'), qos } : { topic, payload: payload.toString('base64'), encoding: 'base64', qos }
  if (retain) body.retain = true
  return body
}

/** The JSON of one event's `data:` line; JSON.stringify escapes CR and LF, so it stays one line. */
export function eventData (topic: string, payload: Buffer, qos: number, retain: boolean): string {
  return JSON.stringify(messageFields(topic, payload, qos, retain))
}

/** One event: `id:` when the message has a position, then its one `data:` line. */
export function formatEvent (msg: LiveMessage, retain = false): string {
  const id = msg.position === undefined ? '' : `id: ${formatPosition(msg.position)}\n`
  return `${id}data: ${eventData(msg.topic, msg.payload, msg.qos, retain)}\n\n`
}

/** The first bytes of a stream: the reconnect delay hint [P-15.2]. */
export function formatRetry (ms: number): string {
  return `retry: ${ms}\n\n`
}

/** [P-15.4] A heartbeat: a comment line, which EventSource ignores and proxies see as traffic. */
export const HEARTBEAT = ':\n\n'

/**
 * [P-15.2] The `rtw-position` event: where the stream stands once the retained
 * values and the replay were sent (`id:` for EventSource's Last-Event-ID), and,
 * after a Last-Event-ID, whether the recovery was complete.
 */
export function formatMarker (head: Position | undefined, recovered: boolean | undefined): string {
  const position = head === undefined ? null : formatPosition(head)
  const data = JSON.stringify(recovered === undefined ? { position } : { position, recovered })
  return `event: rtw-position\n${position === null ? '' : `id: ${position}\n`}data: ${data}\n\n`
}
