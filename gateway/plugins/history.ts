// The message history and the live fan-out behind GET /events and GET /history
// (PROTOCOL.md §14, §15): the `history` stage of the broker pipeline. Every
// message routed on this node, whatever transport published it (MQTT over TCP
// or WebSocket, POST /publish, the AMQP bridge), reaches its `published`
// method once, on the node it was published on: there it is recorded, given
// its position, and handed to the streams.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Stage } from '../../broker/pipeline.js'
import { HISTORY_PREFIX, historyCopied } from '../../core/namespaces.js'
import { RedisHistory } from '../history/redis.js'
import { formatPosition, isRecorded, parsePosition, MemoryHistory, type History, type Position } from '../../core/history.js'
import { LiveHub } from '../../core/live-hub.js'
import { LogLimiter } from '../log-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The history, or null when historySize is 0. */
    history: History | null
    /** Routed messages, with their positions, for the gateway's own listeners. */
    live: LiveHub
  }
}

async function historyPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const filters = config.historyTopics
  const limits = { size: config.historySize, ttlMs: config.historyTtlMs, maxBytes: config.historyMaxBytes }
  // In a cluster the history is shared, and every node's streams are fed from the
  // positioned copies, which the shared routing brings to every node once.
  const cluster = app.cluster
  const history: History | null = config.historySize === 0
    ? null
    : cluster === null ? new MemoryHistory(limits) : new RedisHistory(cluster.link.db, limits)
  const live = new LiveHub()
  const limited = new LogLimiter(app.log)

  const subscriptions = app.broker.subscriptions
  const mirrorFailed = (err?: Error | null): void => {
    if (err) limited.warn('history-mirror', `history: cannot publish a ${HISTORY_PREFIX} copy: ${err.message}`)
  }

  // Per routed message, so what no stream or subscriber uses is not built: the
  // live message only with streams open, the copy's topic only when some
  // client holds a `$history` filter.
  const historyLevel = HISTORY_PREFIX.slice(0, -1)
  const deliver = (topic: string, payload: Buffer, qos: 0 | 1 | 2, position?: Position): void => {
    if (cluster === null && live.size > 0) live.publish(position === undefined ? { topic, payload, qos } : { topic, payload, qos, position })
    // [P-16.1] the positioned copy, for MQTT subscribers that hold one (on any node, in a cluster).
    if (cluster === null && !subscriptions.holdsFirstLevel(historyLevel)) return
    if (!historyCopied(topic)) return
    const copy = HISTORY_PREFIX + topic
    if (cluster !== null || subscriptions.hasMatch(copy)) {
      const head = Buffer.from((position === undefined ? '' : formatPosition(position)) + '\n')
      app.broker.publish(copy, Buffer.concat([head, payload]), qos === 0 ? 0 : 1, false, mirrorFailed)
    }
  }

  const observe = (packet: Parameters<NonNullable<Stage['published']>>[0]): void => {
    const topic = packet.topic
    // The broker's own heartbeats, and the positioned copies made from recorded messages.
    if (topic.charCodeAt(0) === 36 && (topic.startsWith('$SYS/') || topic.startsWith(HISTORY_PREFIX))) return
    const qos = packet.qos
    if (history !== null && isRecorded(filters, topic)) {
      // A copy: the packet's payload may be a slice of a socket read, which it would keep alive.
      const payload = Buffer.from(packet.payload as Buffer)
      if (history instanceof MemoryHistory) {
        deliver(topic, payload, qos, history.appendNow(topic, payload, qos))
        return
      }
      history.append(topic, payload, qos).then(p => deliver(topic, payload, qos, p), (err: Error) => {
        // Still delivered live, without a position (no id: line): nothing is withheld.
        limited.warn('history-append', `history: cannot record a message on ${topic}: ${err.message}`)
        deliver(topic, payload, qos)
      })
      return
    }
    deliver(topic, packet.payload as Buffer, qos)
  }
  app.stages.history = { name: 'history', published: observe } satisfies Stage

  if (cluster !== null) {
    // [P-14.1] each node's streams get every message once, from whichever node recorded it.
    app.broker.aedes.subscribe(`${HISTORY_PREFIX}#`, (packet: { topic: string, payload: Buffer | string, qos: 0 | 1 | 2 }, done: () => void) => {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
      const nl = payload.indexOf(0x0a)
      if (nl !== -1) {
        const position = parsePosition(payload.subarray(0, nl).toString()) ?? undefined
        const topic = packet.topic.slice(HISTORY_PREFIX.length)
        const body = payload.subarray(nl + 1)
        live.publish(position === undefined ? { topic, payload: body, qos: packet.qos } : { topic, payload: body, qos: packet.qos, position })
      }
      done()
    }, () => {})
  }

  app.decorate('history', history)
  app.decorate('live', live)
  app.addHook('onClose', async () => {
    await history?.close()
  })
}

export default fp(historyPlugin, { name: 'rtw-history', dependencies: ['rtw-broker'] })
