// Neither persistence package ships types. Each exports a factory of
// aedes-persistence's CallBackPersistence around its async class: the shape
// Aedes 1.x's own in-memory default has (async setup(), promises, and
// Readable streams for retained messages, queued messages and wills).
declare module 'aedes-persistence-level' {
  import type { AbstractLevel } from 'abstract-level'
  export default function aedesPersistenceLevel (db: AbstractLevel<string | Buffer | Uint8Array, string | Buffer, unknown>): { setup: (broker: unknown) => Promise<void> }
}

declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  export default function aedesPersistenceRedis (opts: { conn: Redis, maxSessionDelivery?: number }): { setup: (broker: unknown) => Promise<void> }
}
