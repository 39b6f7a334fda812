// RabbitMQ (docs/AMQP.md), only when amqpUrl is set: queued services [P-10.1],
// async results, and the MQTT<->AMQP mirror. The gateway starts and serves
// MQTT without RabbitMQ; while it is away, queued services answer 503
// RTW_QUEUE_UNAVAILABLE and /readyz reports the gateway degraded.
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../config.js'
import { isValidService } from '../../core/topics.js'
import { LogLimiter } from '../log-limit.js'
import { AmqpConnection } from '../../net/amqp/connection.js'
import { AmqpRequestQueue } from '../amqp/request-queue.js'
import { ResultStore } from '../amqp/results.js'
import { durableNodeId } from '../amqp/node-id.js'
import { TopicBridge, bridgeFiltersProblem } from '../amqp/topic-bridge.js'
import { declareDeadLetter } from '../../net/amqp/topology.js'

export interface AmqpGateway {
  readonly nodeId: string
  readonly conn: AmqpConnection
  readonly queue: AmqpRequestQueue
  readonly topicBridge: TopicBridge
  readonly results: ResultStore
  stats: () => Record<string, unknown>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** null when RabbitMQ is not configured. */
    amqp: AmqpGateway | null
  }
}

/** How long the reply queue of a gateway that vanished stays in RabbitMQ. */
const REPLY_QUEUE_IDLE_MS = 10 * 60_000

async function amqpPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const services = config.queuedServices
  if (config.amqpUrl === '') {
    if (services.length > 0) throw new ConfigError('queuedServices needs amqpUrl (RTW_AMQP_URL)')
    app.decorate('amqp', null)
    return
  }
  for (const s of services) if (!isValidService(s)) throw new ConfigError(`queuedServices: ${JSON.stringify(s)} is not a valid service name`)
  for (const key of ['amqpBridgeOut', 'amqpBridgeIn'] as const) {
    const problem = bridgeFiltersProblem(config[key])
    if (problem !== undefined) throw new ConfigError(`${key}: ${problem}`)
  }

  // The node keeps its id across restarts, and so its durable reply queue: replies
  // to async requests accepted before a crash still arrive (docs/AMQP.md §4). In a
  // cluster that is its cluster node id (gateway/cluster/identity.ts), else one kept in dataDir.
  const nodeId = app.cluster !== null
    ? app.cluster.id
    : app.state.kind === 'level' ? await durableNodeId(app.state) : randomBytes(9).toString('base64url')
  const limited = new LogLimiter(app.log)
  const broker = app.broker
  // setup runs only after conn.start(), when queue and topicBridge below exist.
  const conn = new AmqpConnection({
    url: config.amqpUrl,
    name: `rtw-gateway ${nodeId}`,
    reconnectMaxMs: config.amqpReconnectMaxMs,
    log: { info: msg => app.log.info(msg), warn: msg => limited.warn('amqp', msg) },
    setup: async ch => {
      await declareDeadLetter(ch)
      await queue.setup(ch)
      await topicBridge.setup(ch)
    }
  })
  const queue = new AmqpRequestQueue(conn, app.bridge, {
    services,
    nodeId,
    maxReplyBytes: config.maxPacketSize,
    replyQueueIdleMs: REPLY_QUEUE_IDLE_MS,
    onReject: (reason, detail) => limited.warn(`amqp-reply-${reason}`, `AMQP reply dead-lettered (${reason}): ${detail}`),
    adopt: async (id, payload) => await results.adopt(id, payload)
  })
  const topicBridge = new TopicBridge(conn, broker, {
    exchange: config.amqpExchange,
    nodeId,
    ...(app.cluster === null ? {} : { clusterId: app.cluster.clusterId }),
    outFilters: config.amqpBridgeOut,
    inFilters: config.amqpBridgeIn,
    maxMessageBytes: config.maxPacketSize,
    onReject: (reason, detail) => limited.warn(`amqp-bridge-${reason}`, `AMQP message for MQTT dead-lettered (${reason}): ${detail}`)
  })
  // In the gateway's state store (plugins/state.ts): shared by a cluster's nodes, kept across restarts with dataDir.
  const results = new ResultStore({
    kv: await app.state.open('results', {
      ttlMs: config.asyncResultTtlMs,
      maxEntries: config.asyncResultMaxCount,
      maxBytes: config.asyncResultMaxBytes,
      whenFull: 'evict-oldest'
    }),
    ttlMs: config.asyncResultTtlMs,
    publish: (topic, payload, retain) => broker.publish(topic, payload, 1, retain, () => {}),
    onError: (handle, err) => limited.warn('async-result-store', `async result ${handle} not stored: ${err.message}`)
  })

  if (services.length > 0) app.bridge.queue = queue
  if (topicBridge.mirrorsOut) {
    broker.aedes.on('publish', packet => topicBridge.onMqttPublish(packet.topic, packet.payload as Buffer, packet.qos, packet.retain))
  }

  const amqp: AmqpGateway = {
    nodeId,
    conn,
    queue,
    topicBridge,
    results,
    stats: () => ({
      state: conn.state,
      connects: conn.connects,
      disconnects: conn.disconnects,
      lastError: conn.lastError,
      requests: queue.counters,
      bridge: topicBridge.counters,
      asyncResults: { ...results.counters, ...results.kv.stats() }
    })
  }
  app.decorate('amqp', amqp)
  conn.start()

  // Closed before the broker (onClose runs in reverse registration order), after the drain.
  app.addHook('onClose', async () => {
    await conn.close()
  })
}

export default fp(amqpPlugin, { name: 'rtw-amqp', dependencies: ['rtw-broker', 'rtw-state'] })
