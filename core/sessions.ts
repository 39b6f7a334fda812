// Who owns a client id [P-4.7]: the record that decides whether a CONNECT
// may take over a session. With auth on, the owner is the token's subject;
// without, the remote address. The decision and the record's transitions are
// pure (mayClaim, claimedRecord, endedRecord, keptFor); where the records live
// is behind SessionOwners: a Map here on a single node without dataDir, the
// gateway's state store (LevelDB or Redis) otherwise (gateway/sessions/). No
// I/O in this file.

export interface SessionRecord {
  /** `sub:<subject>` with auth on, `addr:<address>` without. */
  owner: string
  /** The session outlives its connections (CleanSession 0). */
  persistent: boolean
  /** Without auth only responders are protected: the holder subscribed to a `$req` filter. */
  responder: boolean
  /** A connection holds the id now. */
  connected: boolean
  /** Epoch ms the last connection ended (0 while connected). */
  endedAt: number
  /** Which connection holds it, unique across nodes and restarts: a later claim by the same owner replaces it, and only the holder may end it. */
  lease: string
}

export interface OwnershipPolicy {
  /** Auth on: every id is bound to its subject. Off: only responders and persistent sessions, by address. */
  auth: boolean
  /** How long after its last connection ended a binding still holds (auth: maxTimeoutMs; without: takeoverGraceMs). */
  graceMs: number
  /** Most ids bound at once (sessionOwnersMax): a claim of one more id is refused, no binding is dropped early. */
  maxRecords: number
}

export interface Claim {
  owner: string
  persistent: boolean
}

/** What a claim gave: the lease its connection holds, or why it was refused. */
export type ClaimResult = { ok: true, lease: Lease } | { ok: false, why: 'taken' | 'full' }

/** A connection's hold on its client id, kept by the plugin for that connection's later events. */
export interface Lease {
  readonly clientId: string
  readonly claim: Claim
  readonly token: string
  /** The record is in the store (without auth a plain clean client's is not: nothing would consult it). */
  stored: boolean
  /** The record as this connection last wrote it: its end can swap it without reading it first. */
  written?: string
}

/**
 * [P-4.7] May `claim` connect with this client id, given what is recorded?
 * The same owner always may (MQTT's takeover [MQTT-3.1.4-2]). Another owner
 * may not while the binding holds: with auth, while a connection holds the
 * id, while a persistent session exists, and for graceMs after the last
 * connection of a clean session ended (so that no late reply reaches another
 * subject's inbox); without auth, the same but only for responders and
 * persistent sessions, and a persistent session only for graceMs.
 */
export function mayClaim (record: SessionRecord | undefined, claim: Claim, now: number, policy: Pick<OwnershipPolicy, 'auth' | 'graceMs'>): boolean {
  if (record === undefined || record.owner === claim.owner) return true
  return !binds(record, now, policy)
}

function binds (record: SessionRecord, now: number, policy: Pick<OwnershipPolicy, 'auth' | 'graceMs'>): boolean {
  const recent = record.connected || now - record.endedAt < policy.graceMs
  return policy.auth ? recent || record.persistent : (record.responder || record.persistent) && recent
}

/** The record after `claim` took the id with `token`. A takeover by the same owner keeps what the session was (a responder stays one until it reconnects clean). */
export function claimedRecord (previous: SessionRecord | undefined, claim: Claim, token: string): SessionRecord {
  return {
    owner: claim.owner,
    persistent: claim.persistent,
    responder: previous !== undefined && previous.owner === claim.owner && claim.persistent && previous.responder,
    connected: true,
    endedAt: 0,
    lease: token
  }
}

export function endedRecord (record: SessionRecord, now: number): SessionRecord {
  return { ...record, connected: false, endedAt: now }
}

/**
 * Whether a record has to be kept at all, and for how long: undefined for as
 * long as it is not replaced (a connection holds the id, or with auth a
 * persistent session exists: its binding lasts as long as the session, which
 * Aedes never expires), else the ms its binding still holds (0: drop it now).
 */
export function keptFor (record: SessionRecord, now: number, policy: Pick<OwnershipPolicy, 'auth' | 'graceMs'>): number | undefined {
  if (record.connected || (policy.auth && record.persistent)) return undefined
  if (!policy.auth && !record.responder && !record.persistent) return 0
  return Math.max(0, record.endedAt + policy.graceMs - now)
}

/** Without auth a clean client's record is written only once it serves: no other claim would consult it before. */
export function needsStoring (record: SessionRecord, policy: Pick<OwnershipPolicy, 'auth'>): boolean {
  return policy.auth || record.persistent || record.responder
}

export function encodeRecord (r: SessionRecord): string {
  return JSON.stringify([r.owner, r.persistent ? 1 : 0, r.responder ? 1 : 0, r.connected ? 1 : 0, r.endedAt, r.lease])
}

/** Undefined for what encodeRecord did not write: treated as no record, so it is replaced. */
export function decodeRecord (raw: string): SessionRecord | undefined {
  let v: unknown
  try { v = JSON.parse(raw) } catch { return undefined }
  if (!Array.isArray(v) || v.length !== 6) return undefined
  const [owner, persistent, responder, connected, endedAt, lease] = v as unknown[]
  if (typeof owner !== 'string' || typeof endedAt !== 'number' || typeof lease !== 'string') return undefined
  return { owner, persistent: persistent === 1, responder: responder === 1, connected: connected === 1, endedAt, lease }
}

/** The record store. Each method is atomic per client id, across every node sharing the store. */
export interface SessionOwners {
  /** Records `claim` as the holder of `clientId` when mayClaim allows it and there is room. */
  claim: (clientId: string, claim: Claim, now: number) => Promise<ClaimResult>
  /** The holder subscribed to a `$req` filter. */
  markResponder: (lease: Lease) => Promise<void>
  /** The holder's connection ended. A clean session's binding then lasts graceMs; a persistent one stays. */
  end: (lease: Lease, now: number) => Promise<void>
  /** The record, for tests and operators. */
  get: (clientId: string) => Promise<SessionRecord | undefined>
}

/** The single-node store without dataDir: a Map, swept of expired bindings as it grows. */
export class MemorySessionOwners implements SessionOwners {
  private readonly records = new Map<string, SessionRecord>()
  private leases = 0
  private sweepAt = 1024

  constructor (private readonly policy: OwnershipPolicy) {}

  async claim (clientId: string, claim: Claim, now: number): Promise<ClaimResult> {
    const record = this.records.get(clientId)
    if (!mayClaim(record, claim, now, this.policy)) return { ok: false, why: 'taken' }
    if (record === undefined && this.records.size >= Math.min(this.sweepAt, this.policy.maxRecords)) this.sweep(now)
    if (record === undefined && this.records.size >= this.policy.maxRecords) return { ok: false, why: 'full' }
    const lease: Lease = { clientId, claim, token: String(++this.leases), stored: true }
    this.records.set(clientId, claimedRecord(record, claim, lease.token))
    return { ok: true, lease }
  }

  async markResponder (lease: Lease): Promise<void> {
    const r = this.records.get(lease.clientId)
    if (r !== undefined && r.lease === lease.token) r.responder = true
  }

  async end (lease: Lease, now: number): Promise<void> {
    const r = this.records.get(lease.clientId)
    if (r === undefined || r.lease !== lease.token) return
    this.records.set(lease.clientId, endedRecord(r, now))
  }

  async get (clientId: string): Promise<SessionRecord | undefined> {
    const r = this.records.get(clientId)
    return r === undefined ? undefined : { ...r }
  }

  /** Forgets records whose binding expired; keeps the map's size in step with live sessions. */
  private sweep (now: number): void {
    for (const [id, r] of this.records) {
      if (keptFor(r, now, this.policy) === 0) this.records.delete(id)
    }
    this.sweepAt = Math.max(1024, this.records.size * 2)
  }
}
