// The Server-Sent Events wire format of GET /events (PROTOCOL.md §14). Pure: no I/O.
import { isUtf8 } from 'node:buffer'
import { formatPosition, type Position } from './history.js'

export interface LiveMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  /** Set for messages the history recorded [P-13.2]. */
  readonly position?: Position
}

/**
 * [P-14.3] The JSON of one event's `data:` line: a UTF-8 payload as a string,
 * any other as base64; `retain` only on retained values sent first.
 */
export function eventData (topic: string, payload: Buffer, qos: number, retain: boolean): string {
  const text = isUtf8(payload)
  const body: Record<string, unknown> = { topic, payload: text ? payload.toString('utf8') : payload.toString('base64') }
  if (!text) body.encoding = 'base64'
  body.qos = qos
  if (retain) body.retain = true
  // JSON.stringify escapes CR and LF, so the event stays on one data: line.
  return JSON.stringify(body)
}

/** One event: `id:` when the message has a position, then its one `data:` line. */
export function formatEvent (msg: LiveMessage, retain = false): string {
  const id = msg.position === undefined ? '' : `id: ${formatPosition(msg.position)}\n`
  return `${id}data: ${eventData(msg.topic, msg.payload, msg.qos, retain)}\n\n`
}

/** The first bytes of a stream: the reconnect delay hint [P-14.2]. */
export function formatRetry (ms: number): string {
  return `retry: ${ms}\n\n`
}

/** [P-14.4] A heartbeat: a comment line, which EventSource ignores and proxies see as traffic. */
export const HEARTBEAT = ':\n\n'
