// REST calls to queued services that do not wait for the reply (docs/AMQP.md §4).
// `Prefer: respond-async` is answered 202 with a status URL once RabbitMQ has
// confirmed the request; the result is kept for asyncResultTtlMs, readable at
// GET /requests/<handle>, and published retained on $result/<handle>.
// `timeout=0` stays fire-and-forget [P-2.5], also answered only once confirmed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Call } from '../../core/bridge.js'
import type { Outcome } from '../../core/correlator.js'
import { ERRORS, GatewayError, errorBody } from '../../core/errors.js'
import { RESULT_PATH_PREFIX, resultTopic } from './results.js'

/** True when this call goes to RabbitMQ and should not wait: the caller of callQueuedAsync handles it. */
export function isQueuedAsync (app: FastifyInstance, service: string, noReply: boolean): boolean {
  return noReply && app.amqp !== null && app.bridge.queue?.handles(service) === true
}

function refuse (reply: FastifyReply, id: string, outcome: Outcome): void {
  if (reply.sent) return
  const code = outcome.kind === 'error' ? outcome.code : 'RTW_QUEUE_UNAVAILABLE'
  const message = outcome.kind === 'error' ? outcome.message : undefined
  reply.code(ERRORS[code].status).header('x-request-id', id).send(errorBody(code, message, id))
}

export function callQueuedAsync (app: FastifyInstance, reply: FastifyReply, call: Call): void {
  const amqp = app.amqp
  if (amqp === null) throw new GatewayError('RTW_QUEUE_UNAVAILABLE')
  const bridge = app.bridge
  const unavailable = (id: string, err: Error): void => refuse(reply, id, { kind: 'error', code: 'RTW_QUEUE_UNAVAILABLE', message: `${ERRORS.RTW_QUEUE_UNAVAILABLE.message}: ${err.message}` })

  if (call.timeoutMs === 0) {
    // Fire-and-forget: nobody waits for a reply, but "accepted" still means confirmed.
    const started = bridge.call({ ...call, noReply: true }, () => {})
    if (!started.ok) throw new GatewayError(started.code)
    const id = started.id
    const accepted = (): void => {
      if (!reply.sent) reply.code(202).header('x-request-id', id).send({ id, status: 'accepted' })
    }
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
      refuse(reply, id, outcome)
      return
    }
    results.finish(handle, id, service, outcome)
  })
  if (!started.ok) throw new GatewayError(started.code)
  const id = started.id
  const accept = (): void => {
    if (answered) return
    answered = true
    results.begin(handle, id, service)
    const statusUrl = RESULT_PATH_PREFIX + handle
    reply.code(202)
      .header('x-request-id', id)
      .header('location', statusUrl)
      .header('preference-applied', 'respond-async')
      .send({ id, status: 'accepted', statusUrl, topic: resultTopic(handle) })
  }
  if (!amqp.queue.onConfirm(id, err => { if (err === null) accept() })) accept()
}

/** GET /requests/<handle>: 202 while pending, then the stored result as the response it would have been. */
export function readResult (app: FastifyInstance, req: FastifyRequest, reply: FastifyReply): void {
  const handle = (req.params as { handle?: string }).handle ?? ''
  const entry = app.amqp?.results.get(handle)
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
