// The per-caller in-flight limit (maxInFlightPerClient) in the bridge, with a fake broker.
import { describe, expect, it } from 'vitest'
import { Bridge, type Call } from '../../core/bridge.js'
import { SubscriptionIndex } from '../../core/subscriptions.js'
import type { Outcome } from '../../core/correlator.js'

function setup (maxInFlightPerOwner: number): { bridge: Bridge, published: Array<{ topic: string, payload: Buffer }> } {
  const published: Array<{ topic: string, payload: Buffer }> = []
  const subs = new SubscriptionIndex<string>()
  subs.add('responder', '$req/svc/#')
  const bridge = new Bridge({ requestQos: 0, maxInFlight: 1000, defaultTimeoutMs: 10_000, maxTimeoutMs: 60_000, maxInFlightPerOwner }, {
    publish: (topic, payload, _qos, _retain, cb) => { published.push({ topic, payload }); cb(null) }
  }, subs)
  return { bridge, published }
}

const call = (owner: string | undefined, noReply = false): Call => ({
  service: 'svc', path: '/x', method: 'POST', query: '', headers: {}, body: undefined, timeoutMs: 10_000, noReply, ...(owner === undefined ? {} : { owner })
})

/** Answers a published request envelope as its responder would. */
const reply = (bridge: Bridge, request: Buffer): void => {
  const env = JSON.parse(request.toString()) as { id: string, replyTo: string }
  bridge.handleReply(env.replyTo, Buffer.from(JSON.stringify({ id: env.id, status: 200, headers: {} })), false)
}

describe('per-caller in-flight limit', () => {
  it('refuses a REST owner past its limit with RTW_TOO_MANY_REQUESTS and admits it again once one settles', () => {
    const { bridge, published } = setup(2)
    const outcomes: Outcome[] = []
    expect(bridge.call(call('ip:1'), o => outcomes.push(o))).toMatchObject({ ok: true })
    expect(bridge.call(call('ip:1'), o => outcomes.push(o))).toMatchObject({ ok: true })
    expect(bridge.call(call('ip:1'), o => outcomes.push(o))).toEqual({ ok: false, code: 'RTW_TOO_MANY_REQUESTS' })
    // Another owner, and calls with no owner, are not affected; fire-and-forget is not counted.
    expect(bridge.call(call('ip:2'), () => {})).toMatchObject({ ok: true })
    expect(bridge.call(call(undefined), () => {})).toMatchObject({ ok: true })
    expect(bridge.call(call('ip:1', true), () => {})).toMatchObject({ ok: true })
    reply(bridge, (published[0] as { payload: Buffer }).payload)
    expect(outcomes).toHaveLength(1)
    expect(bridge.call(call('ip:1'), () => {})).toMatchObject({ ok: true })
    expect(bridge.call(call('ip:1'), () => {})).toEqual({ ok: false, code: 'RTW_TOO_MANY_REQUESTS' })
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('counts an MQTT caller per client id and answers the excess 429 in its inbox', () => {
    const { bridge, published } = setup(1)
    const req = (id: string, client = 'dev-1'): Buffer | null => bridge.handleCallerRequest(client, '$req/svc/x', Buffer.from(JSON.stringify({ id, replyTo: `$inbox/${client}/r` })))
    expect(req('a')).not.toBeNull()
    expect(req('b')).toBeNull()
    const answer = published.find(p => p.topic === '$inbox/dev-1/r')
    expect(JSON.parse(answer?.payload.toString() ?? '{}')).toMatchObject({ id: 'b', status: 429 })
    expect(req('c', 'dev-2')).not.toBeNull()
    // Settling (here by shutdown) frees the slot.
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
    expect(req('d')).not.toBeNull()
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })
})
