// Replies only from those who were asked [P-3.8]: the broker stage that
// records, for every `$req` delivery, which client it went to, and lets a
// `$res` reply through only from a client that was sent that request. With
// or without auth: a client that subscribes to no `$req` filter, or to
// another service's, cannot answer anyone. Queued services are answered by
// their AMQP worker through the reply queue, never over MQTT.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Client, Stage } from '../../broker/broker.js'
import { Ledger, deadlineOf, requestIdOf } from '../../core/asked.js'
import { decodeReply } from '../../core/envelope.js'
import { parseReplyTopic, REQ_PREFIX, RES_PREFIX } from '../../core/topics.js'
import { LogLimiter } from '../log-limit.js'

async function repliesPlugin (app: FastifyInstance): Promise<void> {
  // By client id, not by connection: a responder with a persistent session may
  // answer after reconnecting a request it was sent before [P-2.4].
  const ledgers = new Map<string, Ledger>()
  // Services whose responder answers from another connection than the one it reads requests on.
  const open = new Set(app.config.openReplies)
  const limited = new LogLimiter(app.log)

  const replyOf = (topic: string, payload: Buffer): { id: string, service: string } | undefined => {
    const rt = parseReplyTopic(topic)
    if (rt === null) return undefined
    if (rt.kind === 'rid') return rt
    // [P-3.2] the mirror topic: the id is in the envelope.
    const decoded = decodeReply(payload)
    const id = decoded.ok ? decoded.reply.id : decoded.id
    return id === undefined ? undefined : { id, service: rt.service }
  }

  app.stages.replies = {
    name: 'replies',
    deliver (client: Client, packet) {
      const topic = packet.topic
      if (topic.charCodeAt(0) !== 36 || !topic.startsWith(REQ_PREFIX)) return true
      const payload = packet.payload as Buffer
      const deadline = deadlineOf(payload)
      // Fire and forget (deadline 0): nobody waits, so nobody may answer [P-2.5].
      if (deadline <= 0) return true
      const id = requestIdOf(payload)
      if (id === undefined) return true
      let ledger = ledgers.get(client.id)
      if (ledger === undefined) {
        ledger = new Ledger()
        ledgers.set(client.id, ledger)
      }
      ledger.asked(id, deadline)
      return true
    },
    publish (client: Client, packet) {
      const topic = packet.topic
      // A retained "reply" is the bridge's to drop and count [P-3.6].
      if (topic.charCodeAt(0) !== 36 || !topic.startsWith(RES_PREFIX) || packet.retain) return false
      const reply = replyOf(topic, packet.payload as Buffer)
      // An undecodable mirror reply answers nobody; the bridge counts it.
      if (reply === undefined || open.has(reply.service)) return false
      if (ledgers.get(client.id)?.answer(reply.id) === true) return false
      app.bridge.correlator.drop('not-asked')
      limited.warn('reply-not-asked', `client ${client.id} replied on ${topic.slice(0, 200)} to a request it was not sent: dropped [P-3.8]`)
      return true
    },
    disconnect (client: Client) {
      // A clean session's requests can no longer be answered by anyone.
      if (client.clean) ledgers.delete(client.id)
    }
  } satisfies Stage
}

export default fp(repliesPlugin, { name: 'rtw-replies', dependencies: ['rtw-broker'] })
