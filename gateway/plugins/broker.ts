// Embeds the Aedes broker and the request bridge in the Fastify app, and wires
// the broker's publish interception to the bridge [P-3], [P-4].
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createBroker, type Broker, type Stage } from '../../broker/broker.js'
import { levelBackends, levelDir, memoryBackends, redisBackends, type BrokerBackends } from '../../broker/backends.js'
import { Bridge } from '../../core/bridge.js'
import { LogLimiter } from '../log-limit.js'
import { identityOf } from '../auth/identity.js'
import { configFiles } from '../config-files.js'
import { namespaceOf } from '../../core/namespaces.js'
import type { Config } from '../config.js'
import type { Trust } from '../../core/client-address.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** trustedProxies, compiled once in app.ts; undefined trusts nobody. */
    trust: Trust | undefined
    broker: Broker
    bridge: Bridge
  }
}

async function brokerPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const cluster = app.cluster
  const limited = new LogLimiter(app.log)
  // Redis for a cluster; else LevelDB on disk with dataDir; else memory (docs/CLUSTER.md).
  const backends: BrokerBackends = cluster !== null
    ? redisBackends(cluster.link, err => limited.warn('broker-store', `broker store: ${err.message}`))
    : config.dataDir !== '' ? await levelBackends(levelDir(config.dataDir)) : memoryBackends()
  const broker = await createBroker({
    topicLimits: { maxTopicLength: config.maxTopicLength, maxTopicLevels: config.maxTopicLevels },
    tls: configFiles(config).tls,
    persistence: backends.persistence,
    mq: backends.mq,
    ackAfterStore: backends.durable,
    onRefused: (client, what) => limited.warn('refused', `client ${client?.id ?? '?'} refused: ${what}`)
  })
  const bridge = new Bridge({
    requestQos: config.requestQos as 0 | 1,
    maxInFlight: config.maxInFlight,
    defaultTimeoutMs: config.requestTimeoutMs,
    maxTimeoutMs: config.maxTimeoutMs,
    maxInFlightPerOwner: config.maxInFlightPerClient,
    forwardCredentials: new Set(config.forwardCredentials),
    ...(cluster === null ? {} : { nodeId: cluster.idPrefix })
  }, broker, broker.subscriptions, cluster ?? undefined)
  await cluster?.start(broker.subscriptions, (topic, payload) => bridge.handleForwardedReply(topic, payload))

  bridge.onDrop = (reason, detail) => limited.warn(`reply-${reason}`, `dropped (${reason}): ${detail}`)
  app.stages.bridge = {
    name: 'bridge',
    publish (client, packet) {
      const topic = packet.topic
      if (topic.charCodeAt(0) !== 36) return false
      switch (namespaceOf(topic).mqttPublish) {
        case 'responder':
          bridge.handleReply(topic, packet.payload as Buffer, packet.retain)
          return true
        case 'caller': {
          const forward = bridge.handleCallerRequest(client.id, topic, packet.payload as Buffer, identityOf(client))
          if (forward === null) return true
          packet.payload = forward
          // [P-4.2] a request is never retained: it would reach responders that subscribe later.
          packet.retain = false
          return false
        }
        case 'gateway':
          // [P-1.7] inboxes and [P-10.3] async results are written only by the gateway, so they cannot be forged.
          limited.warn('reserved-publish', `client ${client.id} published to ${topic}: only the gateway publishes there; dropped`)
          return true
        default:
          return false
      }
    }
  } satisfies Stage
  broker.aedes.on('clientError', (client, err) => {
    if ((err as { alreadyLogged?: boolean }).alreadyLogged !== true) limited.warn('client-error', `client ${client.id}: ${err.message}`)
  })
  broker.aedes.on('connectionError', (_client, err) => limited.warn('connection-error', `connection: ${err.message}`))
  // The broker's own failures (a will or an offline queue its store could not
  // take, e.g. while Redis is away) are logged, not thrown: the node keeps serving.
  ;(broker.aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => limited.warn('broker-error', `broker: ${err.message}`))

  app.decorate('broker', broker)
  app.decorate('bridge', bridge)
  app.addHook('onClose', async () => {
    // Leave first, so the other nodes stop counting this node's responders.
    await cluster?.leave()
    await broker.close()
    await backends.close()
    await cluster?.link.close()
  })
}

export default fp(brokerPlugin, { name: 'rtw-broker' })
