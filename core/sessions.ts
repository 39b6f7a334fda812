// Who owns a client id [P-4.7]: the record that decides whether a CONNECT
// may take over a session. With auth on, the owner is the token's subject;
// without, the remote address. The decision is pure (mayClaim); where the
// records live is behind SessionOwners, kept in memory here and in Redis
// when several nodes share state. No I/O in this file.

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
  /** Which connection holds it: a later claim by the same owner replaces it, and only the holder may end it. */
  lease: number
}

export interface OwnershipPolicy {
  /** Auth on: every id is bound to its subject. Off: only responders and persistent sessions, by address. */
  auth: boolean
  /** How long after its last connection ended a binding still holds (auth: maxTimeoutMs; without: takeoverGraceMs). */
  graceMs: number
}

export interface Claim {
  owner: string
  persistent: boolean
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
export function mayClaim (record: SessionRecord | undefined, claim: Claim, now: number, policy: OwnershipPolicy): boolean {
  if (record === undefined || record.owner === claim.owner) return true
  const recent = record.connected || now - record.endedAt < policy.graceMs
  const binds = policy.auth ? recent || record.persistent : (record.responder || record.persistent) && recent
  return !binds
}

/** The record store. Each method is atomic per client id; a Redis backend implements the same. */
export interface SessionOwners {
  /**
   * Records `claim` as the holder of `clientId` when mayClaim allows it and
   * resolves its lease; resolves null (nothing changed) when it does not.
   */
  claim: (clientId: string, claim: Claim, now: number) => Promise<number | null>
  /** The holder subscribed to a `$req` filter. */
  markResponder: (clientId: string, lease: number) => void
  /** The holder's connection ended. A clean session's binding then lasts graceMs; a persistent one stays. */
  end: (clientId: string, lease: number, now: number) => void
  /** The record, for tests and operators. */
  get: (clientId: string) => Promise<SessionRecord | undefined>
}

/** The single-node store: a Map, swept of expired clean-session records as it grows. */
export class MemorySessionOwners implements SessionOwners {
  private readonly records = new Map<string, SessionRecord>()
  private leases = 0
  private sweepAt = 1024

  constructor (private readonly policy: OwnershipPolicy) {}

  async claim (clientId: string, claim: Claim, now: number): Promise<number | null> {
    const record = this.records.get(clientId)
    if (!mayClaim(record, claim, now, this.policy)) return null
    const lease = ++this.leases
    // A takeover by the same owner keeps what the session was (a responder stays one until it reconnects clean).
    this.records.set(clientId, {
      owner: claim.owner,
      persistent: claim.persistent,
      responder: record !== undefined && record.owner === claim.owner && claim.persistent && record.responder,
      connected: true,
      endedAt: 0,
      lease
    })
    if (this.records.size >= this.sweepAt) this.sweep(now)
    return lease
  }

  markResponder (clientId: string, lease: number): void {
    const r = this.records.get(clientId)
    if (r !== undefined && r.lease === lease) r.responder = true
  }

  end (clientId: string, lease: number, now: number): void {
    const r = this.records.get(clientId)
    if (r === undefined || r.lease !== lease) return
    r.connected = false
    r.endedAt = now
  }

  async get (clientId: string): Promise<SessionRecord | undefined> {
    const r = this.records.get(clientId)
    return r === undefined ? undefined : { ...r }
  }

  /** Forgets clean sessions whose binding expired; keeps the map's size in step with live sessions. */
  private sweep (now: number): void {
    for (const [id, r] of this.records) {
      if (!r.connected && !r.persistent && now - r.endedAt >= this.policy.graceMs) this.records.delete(id)
    }
    this.sweepAt = Math.max(1024, this.records.size * 2)
  }
}
