// Embeds the Aedes broker and the request bridge in the Fastify app, and wires
// the broker's publish interception to the bridge [P-3], [P-4].
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createBroker, type Broker, type Stage } from '../../broker/broker.js'
import { Bridge } from '../../core/bridge.js'
import { LogLimiter } from '../log-limit.js'
import { configFiles } from '../config-files.js'
import { namespaceOf } from '../../core/namespaces.js'
import { listOf, type Config } from '../config.js'
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
  const limited = new LogLimiter(app.log)
  const broker = await createBroker({
    topicLimits: { maxTopicLength: config.maxTopicLength, maxTopicLevels: config.maxTopicLevels },
    tls: configFiles(config).tls,
    onRefused: (client, what) => limited.warn('refused', `client ${client?.id ?? '?'} refused: ${what}`)
  })
  const bridge = new Bridge({
    requestQos: config.requestQos as 0 | 1,
    maxInFlight: config.maxInFlight,
    defaultTimeoutMs: config.requestTimeoutMs,
    maxTimeoutMs: config.maxTimeoutMs,
    maxInFlightPerOwner: config.maxInFlightPerClient,
    forwardCredentials: new Set(listOf(config.forwardCredentials))
  }, broker, broker.subscriptions)

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
          const forward = bridge.handleCallerRequest(client.id, topic, packet.payload as Buffer)
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

  app.decorate('broker', broker)
  app.decorate('bridge', bridge)
  app.addHook('onClose', async () => {
    await broker.close()
  })
}

export default fp(brokerPlugin, { name: 'rtw-broker' })
