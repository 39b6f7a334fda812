// The gateway's own state (net/store/): async results and idempotency
// records. Redis when redisUrl is set, so every node of a cluster shares them;
// else LevelDB in <dataDir>/gateway, so they survive a crash; else memory.
// Opened before the plugins that use it and closed after them.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../config.js'
import { openStateBackend } from '../../net/store/open.js'
import type { StoreBackend } from '../../net/store/store.js'
import { IdempotencyRecords } from '../idempotency/records.js'

declare module 'fastify' {
  interface FastifyInstance {
    state: StoreBackend
    idempotency: IdempotencyRecords
  }
}

async function statePlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  let backend: StoreBackend
  try {
    backend = await openStateBackend(config)
  } catch (err) {
    // Most often another gateway process holds the same dataDir.
    throw new ConfigError(`dataDir ${config.dataDir}: cannot open ${config.dataDir}/gateway (${(err as Error).message})`)
  }
  app.decorate('state', backend)
  const kv = await backend.open('idem', {
    ttlMs: config.idempotencyTtlMs,
    maxEntries: config.idempotencyMaxKeys,
    maxBytes: config.idempotencyMaxBytes,
    // [P-13.5] forgetting a key early would let its call run twice: refuse new keys instead.
    whenFull: 'refuse'
  })
  app.decorate('idempotency', new IdempotencyRecords(kv, config.idempotencyTtlMs))
  app.addHook('onClose', async () => { await backend.close() })
}

export default fp(statePlugin, { name: 'rtw-state' })
