// Liveness, readiness and counters. /healthz: the process serves. /readyz: every
// configured dependency is usable and the gateway is not draining [P-9].
import type { FastifyInstance } from 'fastify'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_req, reply) => {
    const draining = app.bridge.draining
    const checks: Record<string, string> = { broker: app.broker.aedes.closed ? 'closed' : 'ok' }
    // RabbitMQ, when configured: while it is away the gateway is degraded (queued services answer 503).
    if (app.amqp !== null) checks.amqp = app.amqp.conn.up ? 'ok' : app.amqp.conn.state
    // Redis, in a cluster: while it is away the node serves its own clients only (docs/CLUSTER.md).
    if (app.cluster !== null) checks.redis = app.cluster.link.state
    // The gateway's state store (plugins/state.ts), when it is a server: idempotent calls need it [P-13.9].
    if (app.state.kind === 'redis') checks.state = app.state.healthy ? 'ok' : 'unreachable'
    const degraded = Object.values(checks).some(c => c !== 'ok')
    if (draining || degraded) reply.code(503)
    return { status: draining ? 'draining' : degraded ? 'degraded' : 'ready', checks }
  })

  // The same numbers as /metrics and $SYS, read from the one Metrics object
  // (gateway/metrics/registry.ts), so with auth on the same grant reads them.
  app.get('/stats', async (req, reply) => {
    if (!(await app.numbersGuard(req, reply))) return reply
    return await statsOf(app)
  })
}

/** The JSON of GET /stats, also served on metricsPort (plugins/metrics-port.ts). */
export async function statsOf (app: FastifyInstance): Promise<Record<string, unknown>> {
  const c = app.bridge.correlator
  const m = app.metrics
  return {
    inFlight: m.inFlight(),
    settled: c.settledCount,
    timedOut: c.timedOutCount,
    cancelled: c.cancelledCount,
    dropped: c.dropped,
    clients: app.broker.aedes.connectedClients,
    connections: m.connections(),
    subscriptions: m.subscriptions(),
    messages: m.messages(),
    // Every dropped message by reason: the reply drops above, and what the limits dropped.
    messagesDropped: m.dropped(),
    requests: await m.requestCounts(),
    // What the MQTT limits refused or dropped (README "Limits").
    limits: app.limits.counters,
    // GET /events streams (PROTOCOL.md §15): open now, and what was refused or closed.
    sse: { open: app.sse.open(), ...app.sse.counters },
    // Client id ownership [P-4.7]: CONNECTs refused because the id was another's, or no room was left.
    sessions: { ...app.sessionCounters, store: app.state.kind },
    idempotency: { ...app.idempotency.counters, store: app.state.kind, ...app.idempotency.kv.stats() },
    ...(app.amqp === null ? {} : { amqp: app.amqp.stats() }),
    ...(app.cluster === null ? {} : { cluster: app.cluster.stats() })
  }
}
