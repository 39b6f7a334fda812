// Live updates from HTTP: publish to a topic, and read a topic's retained value [P-8].
import type { FastifyInstance } from 'fastify'
import { isUtf8 } from 'node:buffer'
import { isValidTopicName } from '../../core/topics.js'
import { GatewayError } from '../../core/errors.js'
import { httpPublishAllowed, httpReadAllowed } from '../../core/namespaces.js'
import { checkTopic as checkTopicLimits, type TopicLimits } from '../../core/conformance.js'
import { secondLevelStart } from '../../core/http-routes.js'


interface PublishBody {
  topic: string
  payload: Buffer
  qos: 0 | 1
  retain: boolean
}

/** A topic an HTTP client may use: well-formed, and in a namespace open to it (core/namespaces.ts) [P-8.2]. */
function checkTopic (topic: unknown, open: (topic: string) => boolean): string {
  if (typeof topic !== 'string' || !isValidTopicName(topic) || topic.includes('\uFFFD')) throw new GatewayError('RTW_BAD_TOPIC')
  if (!open(topic)) throw new GatewayError('RTW_BAD_TOPIC', `Topic ${topic} is reserved`)
  return topic
}

/** [P-8.1] `{topic, payload, encoding?: "plain"|"base64", qos?: 0|1, retain?: boolean}`. */
export function parsePublishBody (raw: Buffer | undefined): PublishBody {
  let body: unknown
  try {
    body = JSON.parse(raw === undefined ? '' : raw.toString('utf8'))
  } catch {
    throw new GatewayError('RTW_BAD_JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new GatewayError('RTW_BAD_REQUEST', 'The body must be a JSON object')
  const b = body as Record<string, unknown>
  const topic = checkTopic(b.topic, httpPublishAllowed)
  const encoding = b.encoding ?? 'plain'
  if (encoding !== 'plain' && encoding !== 'base64') throw new GatewayError('RTW_BAD_REQUEST', 'encoding must be "plain" or "base64"')
  let payload: Buffer
  if (typeof b.payload === 'string') payload = Buffer.from(b.payload, encoding === 'base64' ? 'base64' : 'utf8')
  else if (b.payload === undefined) payload = Buffer.alloc(0)
  else if (encoding === 'plain') payload = Buffer.from(JSON.stringify(b.payload))
  else throw new GatewayError('RTW_BAD_REQUEST', 'A base64 payload must be a string')
  const qos = b.qos ?? 0
  if (qos !== 0 && qos !== 1) throw new GatewayError('RTW_BAD_REQUEST', 'qos must be 0 or 1')
  const retain = b.retain ?? false
  if (typeof retain !== 'boolean') throw new GatewayError('RTW_BAD_REQUEST', 'retain must be true or false')
  return { topic, payload, qos, retain }
}

function contentTypeOf (payload: Buffer): string {
  if (!isUtf8(payload)) return 'application/octet-stream'
  try {
    JSON.parse(payload.toString('utf8'))
    return 'application/json; charset=utf-8'
  } catch {
    return 'text/plain; charset=utf-8'
  }
}

/** maxTopicLength and maxTopicLevels apply to HTTP publishers as to MQTT ones. */
function checkLimits (topic: string, limits: TopicLimits): void {
  const over = checkTopicLimits(topic, limits)
  if (over !== null) throw new GatewayError('RTW_BAD_TOPIC', `The ${over.reason}`)
}

export default async function publishRoutes (app: FastifyInstance): Promise<void> {
  const limits: TopicLimits = { maxTopicLength: app.config.maxTopicLength, maxTopicLevels: app.config.maxTopicLevels }
  app.post('/publish', async (req, reply) => {
    const msg = parsePublishBody(req.body as Buffer | undefined)
    checkLimits(msg.topic, limits)
    if (!req.grants.mayPublish(msg.topic)) throw new GatewayError('RTW_FORBIDDEN', `The token does not grant publishing to ${msg.topic}`)
    // GET /events streams are subscribers too [P-15.1].
    const delivered = app.broker.subscriptions.hasMatch(msg.topic) || app.live.hasMatch(msg.topic)
    await new Promise<void>((resolve, reject) => {
      app.broker.publish(msg.topic, msg.payload, msg.qos, msg.retain, err => {
        if (err) reject(new GatewayError('RTW_PUBLISH_FAILED', err.message))
        else resolve()
      })
    })
    // [P-8.1] like EMQX: 200 when someone was subscribed, 202 when nobody was (a retained message is still stored).
    if (delivered) return { delivered: true }
    reply.code(202)
    return { delivered: false, reason: 'no_matching_subscribers' }
  })

  app.get('/retained/*', async (req, reply) => {
    const raw = req.url.slice(secondLevelStart(req.url)).split('?')[0] as string
    let topic: string
    try {
      topic = raw.split('/').map(decodeURIComponent).join('/')
    } catch {
      throw new GatewayError('RTW_BAD_TOPIC', 'Invalid percent-encoding in the topic')
    }
    checkTopic(topic, httpReadAllowed)
    checkLimits(topic, limits)
    if (!req.grants.maySubscribe(topic)) throw new GatewayError('RTW_FORBIDDEN', `The token does not grant reading ${topic}`)
    const packet = await app.broker.readRetained(topic)
    if (packet === null) throw new GatewayError('RTW_NO_RETAINED')
    reply.header('content-type', contentTypeOf(packet.payload)).header('x-mqtt-qos', String(packet.qos))
    return packet.payload
  })
}
