// The echo service's logic: a request envelope in, the reply to publish out.
// Pure, so the MQTT and (later) AMQP workers share it.
import type { RequestEnvelope } from '../gateway/core/envelope.js'

export interface Outgoing { topic: string, payload: Buffer }

/**
 * [P-7] An envelope request is answered on its replyTo with 200, the same body
 * and content type, and what was asked in x-echo-* headers. Anything else is
 * the original project's raw style and is mirrored unchanged on `$res/…` [P-7.2].
 * Returns null when nobody waits for a reply [P-2.5].
 */
export function echo (topic: string, payload: Buffer): Outgoing | null {
  let req: RequestEnvelope | undefined
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'))
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as RequestEnvelope).id === 'string' &&
      typeof (parsed as RequestEnvelope).replyTo === 'string') req = parsed as RequestEnvelope
  } catch {
    // not JSON: the original raw style, mirrored below
  }
  if (req === undefined) return { topic: '$res' + topic.slice(4), payload }
  if (req.replyTo === '') return null
  const headers: Record<string, string> = {
    'x-echo-method': req.method,
    // Header values are kept to ASCII (Node throws above U+00FF): a path with other characters is sent percent-encoded.
    'x-echo-path': /^[\x20-\x7e]*$/.test(req.path) ? req.path : encodeURI(req.path),
    'x-echo-query': req.query
  }
  const ct = req.headers?.['content-type']
  if (ct !== undefined) headers['content-type'] = ct
  const reply: Record<string, unknown> = { id: req.id, status: 200, headers }
  if (req.body !== undefined) reply.body = req.body
  if (req.enc !== undefined) reply.enc = req.enc
  return { topic: req.replyTo, payload: Buffer.from(JSON.stringify(reply)) }
}
