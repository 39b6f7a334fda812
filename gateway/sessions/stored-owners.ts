// Client id ownership [P-4.7] kept in the gateway's state store: LevelDB in
// <dataDir>/gateway, so it survives a restart as the persistent sessions do,
// or Redis, so every node of a cluster sees the same bindings [P-4.9]. Each
// change is a read, the pure decision of core/sessions.ts, then a swap() of
// exactly the value read: two nodes claiming one id at once cannot both win,
// and the loser decides again on what the winner wrote.
import { randomBytes } from 'node:crypto'
import {
  claimedRecord, decodeRecord, encodeRecord, endedRecord, keptFor, mayClaim, needsStoring,
  type Claim, type ClaimResult, type Lease, type OwnershipPolicy, type SessionOwners, type SessionRecord
} from '../../core/sessions.js'
import type { KvStore, StoreBackend } from '../../net/store/store.js'

/** A binding that lasts until it is replaced: as long as its connection or its persistent session. */
const UNTIL_REPLACED_MS = 100 * 365 * 86_400_000
/** A record can only be rewritten this often in a row by other writers before the change gives up (CONNACK 3). */
const MAX_TRIES = 16

export class StoredSessionOwners implements SessionOwners {
  /** This process's part of every lease token: tokens stay unique across nodes and restarts. */
  private readonly incarnation = randomBytes(6).toString('base64url')
  private leases = 0

  private constructor (private readonly kv: KvStore, private readonly policy: OwnershipPolicy) {}

  static async open (backend: StoreBackend, policy: OwnershipPolicy): Promise<StoredSessionOwners> {
    const kv = await backend.open('owners', {
      ttlMs: UNTIL_REPLACED_MS,
      maxEntries: policy.maxRecords,
      // A record is its client id (at most 256 bytes, [P-12.8]) and about 60 bytes of owner and flags.
      maxBytes: policy.maxRecords * 512,
      // Dropping a binding early would hand its id to another subject: refuse new ids instead.
      whenFull: 'refuse'
    })
    return new StoredSessionOwners(kv, policy)
  }

  async claim (clientId: string, claim: Claim, now: number): Promise<ClaimResult> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const { raw, record } = await this.read(clientId)
      if (!mayClaim(record, claim, now, this.policy)) return { ok: false, why: 'taken' }
      const lease: Lease = { clientId, claim, token: `${this.incarnation}.${(++this.leases).toString(36)}`, stored: false }
      const next = claimedRecord(record, claim, lease.token)
      // Without auth a plain clean client's id is free to anyone, so only an earlier record needs replacing.
      if (raw === undefined && !needsStoring(next, this.policy)) return { ok: true, lease }
      const r = await this.write(lease, raw, next, now)
      if (r === 'full') return { ok: false, why: 'full' }
      if (r === 'stored') return { ok: true, lease }
    }
    throw new Error(`client id ownership: the record of ${clientId.slice(0, 100)} kept changing`)
  }

  async markResponder (lease: Lease): Promise<void> {
    // Only the anonymous rule looks at it [P-4.7].
    if (this.policy.auth) return
    for (let i = 0; i < MAX_TRIES; i++) {
      const { raw, record } = await this.read(lease.clientId)
      // Taken over since (or ended and replaced): the new holder's record is not this connection's to change.
      if (record !== undefined && record.lease !== lease.token) return
      if (record?.responder === true) return
      const next = { ...(record ?? claimedRecord(undefined, lease.claim, lease.token)), responder: true }
      const r = await this.write(lease, raw, next, Date.now())
      if (r === 'full') throw new Error('sessionOwnersMax reached: a responder\'s id is not protected')
      if (r === 'stored') return
    }
  }

  async end (lease: Lease, now: number): Promise<void> {
    if (!lease.stored) return
    // First as this connection wrote it: one swap, and a read only when someone wrote since.
    let raw = lease.written
    let record = raw === undefined ? undefined : decodeRecord(raw)
    for (let i = 0; i < MAX_TRIES; i++) {
      if (record === undefined || record.lease !== lease.token) return
      if (await this.write(lease, raw, endedRecord(record, now), now) !== 'changed') return
      ;({ raw, record } = await this.read(lease.clientId))
    }
  }

  async get (clientId: string): Promise<SessionRecord | undefined> {
    return (await this.read(clientId)).record
  }

  private async read (clientId: string): Promise<{ raw: string | undefined, record: SessionRecord | undefined }> {
    const raw = await this.kv.get(clientId)
    return { raw, record: raw === undefined ? undefined : decodeRecord(raw) }
  }

  /** Replaces exactly `raw` with `next`, kept as long as its binding holds (a binding that no longer holds lives 1 ms). */
  private async write (lease: Lease, raw: string | undefined, next: SessionRecord, now: number): Promise<'stored' | 'changed' | 'full'> {
    const ttl = keptFor(next, now, this.policy)
    const value = encodeRecord(next)
    const r = await this.kv.swap(lease.clientId, raw, value, ttl === undefined ? UNTIL_REPLACED_MS : Math.max(1, ttl))
    if (r === 'stored') {
      lease.stored = true
      lease.written = value
    }
    return r
  }
}
