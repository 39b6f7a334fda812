// The echo service's logic: a request envelope in, the reply to publish out.
// Pure, so the MQTT and (later) AMQP workers share it.
import type { RequestEnvelope } from '../core/envelope.js'

export interface Outgoing { topic: string, payload: Buffer }

/** Printable ASCII as is; any other byte of the UTF-8 form percent-encoded (never throws, unlike encodeURI). */
function asciiHeader (v: string): string {
  if (/^[\x20-\x7e]*$/.test(v)) return v
  let out = ''
  for (const b of Buffer.from(v, 'utf8')) out += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0')
  return out
}

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
    // Header values are kept to ASCII (Node throws above U+00FF): other characters are sent percent-encoded.
    'x-echo-path': asciiHeader(req.path),
    'x-echo-query': asciiHeader(req.query)
  }
  const ct = req.headers?.['content-type']
  if (ct !== undefined) headers['content-type'] = ct
  const reply: Record<string, unknown> = { id: req.id, status: 200, headers }
  if (req.body !== undefined) reply.body = req.body
  if (req.enc !== undefined) reply.enc = req.enc
  return { topic: req.replyTo, payload: Buffer.from(JSON.stringify(reply)) }
}
