// Client id ownership kept in the state store [P-4.9]: the same records on a
// real LevelDB directory (closed and opened again, as after a restart) and on
// a real redis-server shared by two "nodes" racing for one id.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClaimResult, Lease, OwnershipPolicy } from '../../core/sessions.js'
import { StoredSessionOwners } from '../../gateway/sessions/stored-owners.js'
import { LevelBackend } from '../../net/store/level.js'
import { RedisBackend } from '../../net/store/redis.js'
import { redisAvailable, startRedis, type TestRedis } from '../helpers/redis.js'

const auth: OwnershipPolicy = { auth: true, graceMs: 60_000, maxRecords: 100 }
const anon: OwnershipPolicy = { auth: false, graceMs: 60_000, maxRecords: 100 }
const held = (r: ClaimResult): Lease => {
  if (!r.ok) throw new Error(`refused: ${r.why}`)
  return r.lease
}

describe('client id ownership in LevelDB (dataDir)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtw-owners-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a persistent session\'s binding survives the store being closed and opened again; a clean one lasts its grace', async () => {
    let backend = await LevelBackend.open(dir)
    let owners = await StoredSessionOwners.open(backend, { ...auth, graceMs: 200 })
    const now = Date.now()
    const persistent = held(await owners.claim('dev-p', { owner: 'sub:victim', persistent: true }, now))
    await owners.end(persistent, now)
    await owners.end(held(await owners.claim('dev-c', { owner: 'sub:victim', persistent: false }, now)), now)
    // Held while connected, with no end: what a kill -9 leaves.
    held(await owners.claim('dev-live', { owner: 'sub:victim', persistent: false }, now))
    await backend.close()

    backend = await LevelBackend.open(dir)
    owners = await StoredSessionOwners.open(backend, { ...auth, graceMs: 200 })
    try {
      const later = Date.now()
      expect(await owners.claim('dev-p', { owner: 'sub:attacker', persistent: true }, later + 3_600_000)).toEqual({ ok: false, why: 'taken' })
      expect(await owners.claim('dev-live', { owner: 'sub:attacker', persistent: false }, later)).toEqual({ ok: false, why: 'taken' })
      expect(await owners.claim('dev-c', { owner: 'sub:attacker', persistent: false }, now + 100)).toEqual({ ok: false, why: 'taken' })
      expect((await owners.claim('dev-c', { owner: 'sub:attacker', persistent: false }, now + 250)).ok).toBe(true)
      // The owner takes its own ids back at once, whatever the record says.
      expect((await owners.claim('dev-p', { owner: 'sub:victim', persistent: true }, later)).ok).toBe(true)
      expect((await owners.claim('dev-live', { owner: 'sub:victim', persistent: false }, later)).ok).toBe(true)
    } finally {
      await backend.close()
    }
  })

  it('past sessionOwnersMax a new id is refused, never an older binding dropped', async () => {
    const backend = await LevelBackend.open(mkdtempSync(join(tmpdir(), 'rtw-owners-full-')))
    try {
      const owners = await StoredSessionOwners.open(backend, { ...auth, maxRecords: 2 })
      held(await owners.claim('a', { owner: 'sub:v', persistent: true }, 0))
      held(await owners.claim('b', { owner: 'sub:v', persistent: true }, 0))
      expect(await owners.claim('c', { owner: 'sub:v', persistent: true }, 0)).toEqual({ ok: false, why: 'full' })
      expect(await owners.claim('a', { owner: 'sub:x', persistent: true }, 0)).toEqual({ ok: false, why: 'taken' })
      expect((await owners.claim('b', { owner: 'sub:v', persistent: true }, 0)).ok).toBe(true)
    } finally {
      await backend.close()
    }
  })
})

describe.skipIf(!redisAvailable())('client id ownership in Redis (redisUrl), shared by nodes', () => {
  let redis: TestRedis
  const backends: RedisBackend[] = []
  const node = async (policy: OwnershipPolicy): Promise<StoredSessionOwners> => {
    const b = new RedisBackend(redis.url)
    backends.push(b)
    return await StoredSessionOwners.open(b, policy)
  }
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => {
    for (const b of backends) await b.close()
    await redis?.close()
  })

  it('a binding made on one node holds on the others; the same owner takes over anywhere, and only its current lease ends it', async () => {
    const [a, b] = [await node(auth), await node(auth)]
    const now = Date.now()
    const onA = held(await a.claim('victim-dev', { owner: 'sub:victim', persistent: false }, now))
    expect(await b.claim('victim-dev', { owner: 'sub:attacker', persistent: false }, now)).toEqual({ ok: false, why: 'taken' })
    const onB = held(await b.claim('victim-dev', { owner: 'sub:victim', persistent: false }, now))
    // A's old connection closes after the takeover: that must not end B's hold.
    await a.end(onA, now)
    expect(await a.get('victim-dev')).toMatchObject({ connected: true, lease: onB.token })
    await b.end(onB, now)
    expect(await a.get('victim-dev')).toMatchObject({ connected: false, endedAt: now })
  })

  it('of many nodes claiming one free id at once for different owners, exactly one wins', async () => {
    const nodes = await Promise.all(Array.from({ length: 3 }, async () => await node(auth)))
    const now = Date.now()
    const results = await Promise.all(Array.from({ length: 12 }, async (_, i) =>
      await (nodes[i % 3] as StoredSessionOwners).claim('contested', { owner: `sub:s${i}`, persistent: i % 2 === 0 }, now)))
    const winners = results.flatMap((r, i) => r.ok ? [i] : [])
    expect(winners).toHaveLength(1)
    expect((await nodes[0]!.get('contested'))?.owner).toBe(`sub:s${winners[0]!}`)
  })

  it('without auth: a clean client costs no write until it serves; then its id is its address\'s on every node', async () => {
    const [a, b] = [await node(anon), await node(anon)]
    const now = Date.now()
    const lease = held(await a.claim('anon-svc', { owner: 'addr:10.0.0.1', persistent: false }, now))
    expect(lease.stored).toBe(false)
    expect(await a.get('anon-svc')).toBeUndefined()
    expect((await b.claim('anon-plain', { owner: 'addr:10.0.0.2', persistent: false }, now)).ok).toBe(true)
    await a.markResponder(lease)
    expect(await b.get('anon-svc')).toMatchObject({ owner: 'addr:10.0.0.1', responder: true, connected: true })
    expect(await b.claim('anon-svc', { owner: 'addr:10.0.0.2', persistent: false }, now)).toEqual({ ok: false, why: 'taken' })
    expect((await b.claim('anon-svc', { owner: 'addr:10.0.0.1', persistent: false }, now)).ok).toBe(true)
  })

  it('Redis gone: a claim fails (the plugin answers CONNACK 3) rather than letting anyone in', async () => {
    const a = await node(auth)
    await redis.kill()
    try {
      await expect(a.claim('while-down', { owner: 'sub:x', persistent: false }, Date.now())).rejects.toThrow()
    } finally {
      await redis.start()
    }
  })
})
