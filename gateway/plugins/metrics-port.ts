// GET /metrics and GET /stats on a port of their own (metricsPort), one per
// process: under pm2's cluster mode (RTW_INSTANCES=N) the shared HTTP port hands
// each scrape to whichever process takes the connection, and each process has
// its own prom-client registry. prom-client's AggregatorRegistry needs code in
// the cluster's master process, which pm2 keeps to itself (prom-client issues
// #165, #239), so each process is a Prometheus target of its own, on
// metricsPort + its pm2 instance index, and PromQL adds them up
// (`sum without (instance) (…)`). Built here, listened on by main.ts; the same
// Host check and auth rule as on the HTTP port.
import fp from 'fastify-plugin'
import Fastify, { type FastifyInstance } from 'fastify'
import { errorBody } from '../../core/errors.js'
import { statsOf } from '../routes/health.js'
import { configFiles } from '../config-files.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Listens on metricsPort + instanceIndex(); null when metricsPort is 0. */
    metricsListener: { listen: (host: string) => Promise<number> } | null
  }
}

/** This process's pm2 instance (NODE_APP_INSTANCE: 0 … N-1 under pm2), 0 outside pm2. */
export function instanceIndex (env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.NODE_APP_INSTANCE)
  return Number.isSafeInteger(n) && n >= 0 ? n : 0
}

async function metricsPortPlugin (app: FastifyInstance): Promise<void> {
  const base = app.config.metricsPort
  if (base === 0) {
    app.decorate('metricsListener', null)
    return
  }
  // TLS like the HTTP port: a scrape with auth on carries a token.
  const side = Fastify({ logger: false, ...({ https: configFiles(app.config).tls ?? null } as object) })
  side.addHook('onRequest', async (req, reply) => {
    if (!app.hostAllowed(req.headers.host)) return await reply.code(421).send(errorBody('RTW_HOST_NOT_ALLOWED'))
  })
  side.get('/metrics', async (req, reply) => {
    if (!(await app.numbersGuard(req, reply))) return reply
    return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics())
  })
  side.get('/stats', async (req, reply) => {
    if (!(await app.numbersGuard(req, reply))) return reply
    return await statsOf(app)
  })
  app.decorate('metricsListener', {
    async listen (host: string) {
      await side.listen({ port: base + instanceIndex(), host })
      const address = side.server.address()
      return typeof address === 'object' && address !== null ? address.port : base + instanceIndex()
    }
  })
  app.addHook('onClose', async () => { await side.close() })
}

export default fp(metricsPortPlugin, { name: 'rtw-metrics-port', dependencies: ['rtw-metrics', 'rtw-host-check'] })
