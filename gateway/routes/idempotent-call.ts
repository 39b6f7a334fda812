// REST calls with an Idempotency-Key (PROTOCOL.md §13): executed at most once
// per caller and key within idempotencyTtlMs; a repeat gets the stored
// response with Idempotent-Replayed: true. Reached from routes/api.ts only
// when the header is present, so calls without it pay for one header lookup.
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Call } from '../../core/bridge.js'
import type { Outcome } from '../../core/correlator.js'
import { ERRORS, GatewayError, type ErrorCode } from '../../core/errors.js'
import { callQueuedAsync, isQueuedAsync, jsonReply } from '../amqp/async-call.js'
import { outcomeReply } from '../amqp/results.js'
import { fingerprint, parseIdempotencyKey, scopedKey, type IdempotencyRecords } from '../idempotency/records.js'

/** A claim outlives its call's timeout by this much, so the outcome can still be stored; a crashed node's claim then lapses. */
const CLAIM_GRACE_MS = 30_000

// [P-13.7] Refused before anything was sent to a responder or queue: the key is
// released, so a retry with it may run. Every other outcome is kept.
const NOT_EXECUTED = new Set<ErrorCode>(['RTW_QUEUE_UNAVAILABLE', 'RTW_PUBLISH_FAILED', 'RTW_SHUTTING_DOWN'])

type Send = (reply: FastifyReply, id: string, outcome: Outcome) => void

function unavailable (err: unknown): GatewayError {
  return new GatewayError('RTW_STATE_UNAVAILABLE', `${ERRORS.RTW_STATE_UNAVAILABLE.message}: ${(err as Error).message}`)
}

async function waitAtMost (p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p, new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

export async function idempotentCall (app: FastifyInstance, reply: FastifyReply, call: Call, header: string | string[], send: Send): Promise<FastifyReply> {
  const records = app.idempotency
  const key = scopedKey(call.owner ?? '', parseIdempotencyKey(header))
  const fp = fingerprint(call)
  const claimTtl = call.timeoutMs + CLAIM_GRACE_MS
  for (let attempt = 0; attempt < 3; attempt++) {
    let held
    try {
      held = await records.claim(key, fp, claimTtl)
    } catch (err) {
      throw unavailable(err)
    }
    if (held === true) {
      run(app, records, reply, { ...call, dedupeId: 'idem-' + key }, key, fp, send)
      return reply
    }
    if (held === undefined) continue
    if (held === 'full') {
      records.counters.refused++
      reply.header('retry-after', '60')
      throw new GatewayError('RTW_IDEMPOTENCY_STORE_FULL')
    }
    if (held.fp !== fp) {
      records.counters.mismatches++
      throw new GatewayError('RTW_IDEMPOTENCY_KEY_REUSED')
    }
    if (held.done) {
      // [P-13.3] the stored response, as it was, marked as a replay.
      records.counters.replayed++
      reply.header('idempotent-replayed', 'true')
      send(reply, held.id, { kind: 'reply', reply: held.reply })
      return reply
    }
    const local = records.running.get(key)
    if (local === undefined) break
    // [P-13.6] running on this node: wait for it, as long as this call would have waited for a reply.
    records.counters.waited++
    await waitAtMost(local, Math.max(call.timeoutMs, 1))
  }
  records.counters.conflicts++
  reply.header('retry-after', '1')
  throw new GatewayError('RTW_IDEMPOTENCY_IN_PROGRESS')
}

/** Executes the claimed call; its outcome is stored (or the key released) before the caller sees it. */
function run (app: FastifyInstance, records: IdempotencyRecords, reply: FastifyReply, call: Call, key: string, fp: string, send: Send): void {
  let finished!: () => void
  records.running.set(key, new Promise<void>(resolve => { finished = resolve }))
  records.counters.executed++
  let settled = false
  const settle = (id: string, outcome: Outcome): void => {
    if (settled) return
    settled = true
    const notRun = outcome.kind === 'error' && NOT_EXECUTED.has(outcome.code)
    const write = notRun ? records.release(key) : records.complete(key, fp, id, outcomeReply(id, outcome))
    write.catch((err: Error) => app.log.warn(`idempotency record ${notRun ? 'release' : 'write'} failed for ${id}: ${err.message}`)).finally(() => {
      records.running.delete(key)
      finished()
      send(reply, id, outcome)
    })
  }
  try {
    // Not watched for a hang-up [P-5.7]: a caller that lost its connection retries with the key and gets this outcome.
    if (isQueuedAsync(app, call.service, call.noReply)) {
      callQueuedAsync(app, call, settle)
      return
    }
    const started = app.bridge.call(call, (outcome, id) => settle(id, outcome))
    if (!started.ok) throw new GatewayError(started.code)
    // [P-2.5] accepted, nobody waits for the reply.
    if (call.noReply) settle(started.id, jsonReply(started.id, 202, { id: started.id, status: 'accepted' }, { 'preference-applied': 'respond-async' }))
  } catch (err) {
    // Refused at admission (no responder, too many requests…): never executed,
    // and answered by the error handler like any refusal.
    records.running.delete(key)
    finished()
    records.release(key).catch(() => {})
    throw err
  }
}
