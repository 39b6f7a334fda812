// Liveness, readiness and counters. /healthz: the process serves. /readyz: every
// configured dependency is usable and the gateway is not draining [P-9].
import type { FastifyInstance } from 'fastify'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_req, reply) => {
    const draining = app.bridge.draining
    if (draining) reply.code(503)
    return { status: draining ? 'draining' : 'ready', checks: { broker: app.broker.aedes.closed ? 'closed' : 'ok' } }
  })

  app.get('/stats', async () => {
    const c = app.bridge.correlator
    return {
      inFlight: c.size,
      settled: c.settledCount,
      timedOut: c.timedOutCount,
      dropped: c.dropped,
      clients: app.broker.aedes.connectedClients
    }
  })
}
