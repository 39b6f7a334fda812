// REST calls to queued services that do not wait for the reply (docs/AMQP.md §4).
// `Prefer: respond-async` is answered 202 with a status URL once RabbitMQ has
// confirmed the request and the pending result is stored; the result is kept
// for asyncResultTtlMs, readable at GET /requests/<handle> on any node sharing
// the state store, and published retained on $result/<handle>.
// `timeout=0` stays fire-and-forget [P-2.5], also answered only once confirmed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Call } from '../../core/bridge.js'
import type { Outcome } from '../../core/correlator.js'
import type { Reply } from '../../core/envelope.js'
import { ERRORS, GatewayError, errorBody } from '../../core/errors.js'
import { RESULT_PATH_PREFIX, resultTopic } from './results.js'

/** A pending result outlives its request's timeout by this much, so the timeout outcome can still be stored. */
const PENDING_GRACE_MS = 60_000

/** True when this call goes to RabbitMQ and should not wait: the caller of callQueuedAsync handles it. */
export function isQueuedAsync (app: FastifyInstance, service: string, noReply: boolean): boolean {
  return noReply && app.amqp !== null && app.bridge.queue?.handles(service) === true
}

/** A gateway-made JSON response, in the shape of a responder's reply, so it can be stored and replayed too. */
export function jsonReply (id: string, status: number, body: object, headers: Record<string, string> = {}): Outcome {
  const reply: Reply = { id, status, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) }
  return { kind: 'reply', reply }
}

/** Answers the call once: `answer` gets the 202 (as a reply) or the refusal (as an error). */
export function callQueuedAsync (app: FastifyInstance, call: Call, answer: (id: string, outcome: Outcome) => void): void {
  const amqp = app.amqp
  if (amqp === null) throw new GatewayError('RTW_QUEUE_UNAVAILABLE')
  const bridge = app.bridge
  const unavailable = (id: string, err: Error): void => answer(id, { kind: 'error', code: 'RTW_QUEUE_UNAVAILABLE', message: `${ERRORS.RTW_QUEUE_UNAVAILABLE.message}: ${err.message}` })

  if (call.timeoutMs === 0) {
    // Fire-and-forget: nobody waits for a reply, but "accepted" still means confirmed.
    const started = bridge.call({ ...call, noReply: true }, () => {})
    if (!started.ok) throw new GatewayError(started.code)
    const id = started.id
    const accepted = (): void => answer(id, jsonReply(id, 202, { id, status: 'accepted' }))
    if (!amqp.queue.onConfirm(id, err => { if (err === null) accepted(); else unavailable(id, err) })) accepted()
    return
  }

  const results = amqp.results
  const handle = results.newHandle()
  const service = call.service
  let answered = false
  const started = bridge.call({ ...call, noReply: false }, (outcome, id) => {
    if (!answered && outcome.kind === 'error' && outcome.code === 'RTW_QUEUE_UNAVAILABLE') {
      // Never confirmed, so never accepted: the caller learns it now, not from the result.
      answered = true
      answer(id, outcome)
      return
    }
    void results.finish(handle, id, service, outcome)
  })
  if (!started.ok) throw new GatewayError(started.code)
  const id = started.id
  const accept = (): void => {
    if (answered) return
    answered = true
    const statusUrl = RESULT_PATH_PREFIX + handle
    // Stored before the 202, so the handle reads back at once on every node. A
    // store that fails is logged by the store; the request is accepted either way.
    void results.begin(handle, id, service, call.timeoutMs, call.timeoutMs + PENDING_GRACE_MS).then(() => {
      answer(id, jsonReply(id, 202, { id, status: 'accepted', statusUrl, topic: resultTopic(handle) },
        { location: statusUrl, 'preference-applied': 'respond-async' }))
    })
  }
  if (!amqp.queue.onConfirm(id, err => { if (err === null) accept() })) accept()
}

/** GET /requests/<handle>: 202 while pending, then the stored result as the response it would have been. */
export async function readResult (app: FastifyInstance, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const handle = (req.params as { handle?: string }).handle ?? ''
  const results = app.amqp?.results
  if (results === undefined) throw new GatewayError('RTW_RESULT_NOT_FOUND')
  let entry
  try {
    entry = await results.get(handle)
  } catch (err) {
    throw new GatewayError('RTW_STATE_UNAVAILABLE', `${ERRORS.RTW_STATE_UNAVAILABLE.message}: ${(err as Error).message}`)
  }
  if (entry === undefined) throw new GatewayError('RTW_RESULT_NOT_FOUND')
  reply.header('x-request-id', entry.requestId)
  if (entry.state === 'pending' || entry.outcome === undefined) {
    reply.code(202).header('x-rtw-request-state', 'pending').header('retry-after', '1')
      .send({ id: entry.requestId, status: 'pending', statusUrl: RESULT_PATH_PREFIX + handle, topic: resultTopic(handle) })
    return
  }
  reply.header('x-rtw-request-state', 'done')
  const outcome = entry.outcome
  if (outcome.kind === 'error') {
    reply.code(ERRORS[outcome.code].status).send(errorBody(outcome.code, outcome.message, entry.requestId))
    return
  }
  const r = outcome.reply
  reply.code(r.status).headers(r.headers).send(typeof r.body === 'string' ? Buffer.from(r.body) : r.body)
}
