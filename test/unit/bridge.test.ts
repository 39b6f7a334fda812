// The request/reply exchange without any I/O (core/bridge.ts): a fake
// broker port and a subscription index stand in for Aedes.
import { describe, expect, it, vi } from 'vitest'
import { Bridge, type BrokerPort, type Call } from '../../core/bridge.js'
import type { Outcome } from '../../core/correlator.js'
import { SubscriptionIndex } from '../../core/subscriptions.js'

interface Sent { topic: string, payload: Buffer, qos: 0 | 1, retain: boolean }

function setup (opts: { maxInFlight?: number, perOwner?: number, onPublish?: (s: Sent, bridge: Bridge) => Error | null } = {}): { bridge: Bridge, sent: Sent[], subs: SubscriptionIndex<unknown>, drops: string[] } {
  const sent: Sent[] = []
  const subs = new SubscriptionIndex<unknown>()
  subs.add('responder', '$req/svc/#')
  const state: { bridge?: Bridge } = {}
  const port: BrokerPort = {
    publish (topic, payload, qos, retain, cb) {
      const s = { topic, payload, qos, retain }
      sent.push(s)
      cb(opts.onPublish?.(s, state.bridge as Bridge) ?? null)
    }
  }
  const bridge = new Bridge({ requestQos: 1, maxInFlight: opts.maxInFlight ?? 100, defaultTimeoutMs: 1000, maxTimeoutMs: 5000, maxInFlightPerOwner: opts.perOwner }, port, subs)
  state.bridge = bridge
  const drops: string[] = []
  bridge.onDrop = reason => drops.push(reason)
  return { bridge, sent, subs, drops }
}

const call = (over: Partial<Call> = {}): Call => ({
  service: 'svc', path: '/a', method: 'POST', query: 'q=1', headers: { 'content-type': 'text/plain' }, body: Buffer.from('hi'), timeoutMs: 1000, noReply: false, ...over
})

const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString()) as Record<string, unknown>

describe('Bridge.call (REST callers)', () => {
  it('publishes the request envelope on $req/<service><path> with the configured QoS, never retained', () => {
    const { bridge, sent } = setup()
    const start = bridge.call(call(), () => {})
    expect(start.ok).toBe(true)
    const id = start.ok ? start.id : ''
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ topic: '$req/svc/a', qos: 1, retain: false })
    const env = json(sent[0]?.payload ?? Buffer.alloc(0))
    expect(env).toMatchObject({ id, method: 'POST', path: '/a', query: 'q=1', headers: { 'content-type': 'text/plain' }, body: 'hi', replyTo: `$res/svc/$rid/${id}` })
    expect(env.deadline).toBeGreaterThan(Date.now())
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('registers the waiter before publishing, so a reply made during the publish is matched [P-5.2]', () => {
    const { bridge } = setup({
      onPublish: (s, b) => {
        const env = json(s.payload)
        b.handleReply(env.replyTo as string, Buffer.from(JSON.stringify({ status: 200, body: 'instant' })), false)
        return null
      }
    })
    const got: Outcome[] = []
    bridge.call(call(), o => got.push(o))
    expect(got).toMatchObject([{ kind: 'reply', reply: { status: 200, body: 'instant' } }])
  })

  it('settles with RTW_PUBLISH_FAILED when the broker refuses the publish', () => {
    const { bridge } = setup({ onPublish: () => new Error('broker closed') })
    const got: Outcome[] = []
    bridge.call(call(), o => got.push(o))
    expect(got).toEqual([{ kind: 'error', code: 'RTW_PUBLISH_FAILED', message: 'broker closed' }])
    expect(bridge.correlator.size).toBe(0)
  })

  it('publishes fire-and-forget with an empty replyTo and deadline 0, and waits for nothing', () => {
    const { bridge, sent } = setup()
    const start = bridge.call(call({ noReply: true }), () => { throw new Error('nobody should be settled') })
    expect(start.ok).toBe(true)
    expect(json(sent[0]?.payload ?? Buffer.alloc(0))).toMatchObject({ replyTo: '', deadline: 0 })
    expect(bridge.correlator.size).toBe(0)
  })

  it('carries a binary body as base64 and an empty body not at all', () => {
    const { bridge, sent } = setup()
    bridge.call(call({ body: Buffer.from([0xff, 0x00]) }), () => {})
    bridge.call(call({ body: undefined }), () => {})
    expect(json(sent[0]?.payload ?? Buffer.alloc(0))).toMatchObject({ body: '/wA=', enc: 'base64' })
    expect(json(sent[1]?.payload ?? Buffer.alloc(0))).not.toHaveProperty('body')
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('writes the envelope fields in [P-2.1] order, id first and deadline last, and no key for an absent part', () => {
    const { bridge, sent } = setup()
    bridge.call(call({ body: Buffer.from('{"k":1}') }), () => {})
    bridge.call(call({ body: Buffer.from([0xff]) }), () => {})
    bridge.call(call({ body: undefined }), () => {})
    const keys = (i: number): string[] => Object.keys(json(sent[i]?.payload ?? Buffer.alloc(0)))
    expect(keys(0)).toEqual(['id', 'method', 'path', 'query', 'headers', 'body', 'replyTo', 'deadline'])
    expect(keys(1)).toEqual(['id', 'method', 'path', 'query', 'headers', 'body', 'enc', 'replyTo', 'deadline'])
    expect(keys(2)).toEqual(['id', 'method', 'path', 'query', 'headers', 'replyTo', 'deadline'])
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('refuses in the documented order: draining 503, no responder 404, full 429 [P-6.2]', () => {
    const { bridge, sent } = setup({ maxInFlight: 1 })
    bridge.call(call(), () => {})
    expect(bridge.call(call({ service: 'nobody' }), () => {})).toEqual({ ok: false, code: 'RTW_NO_RESPONDER' })
    expect(bridge.call(call(), () => {})).toEqual({ ok: false, code: 'RTW_TOO_MANY_REQUESTS' })
    bridge.draining = true
    expect(bridge.call(call({ service: 'nobody' }), () => {})).toEqual({ ok: false, code: 'RTW_SHUTTING_DOWN' })
    expect(sent).toHaveLength(1)
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('limits requests in flight per owner and frees the slot when one settles', () => {
    const { bridge } = setup({ perOwner: 2 })
    const a1 = bridge.call(call({ owner: 'ip:a' }), () => {})
    bridge.call(call({ owner: 'ip:a' }), () => {})
    expect(bridge.call(call({ owner: 'ip:a' }), () => {})).toEqual({ ok: false, code: 'RTW_TOO_MANY_REQUESTS' })
    expect(bridge.call(call({ owner: 'ip:b' }), () => {}).ok).toBe(true)
    if (a1.ok) bridge.handleReply(`$res/svc/$rid/${a1.id}`, Buffer.from('{"status":200}'), false)
    expect(bridge.call(call({ owner: 'ip:a' }), () => {}).ok).toBe(true)
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })

  it('gives ids that are unique within the process', () => {
    const { bridge } = setup()
    const ids = new Set(Array.from({ length: 1000 }, () => bridge.nextId()))
    expect(ids.size).toBe(1000)
  })
})

describe('Bridge.handleReply', () => {
  it('turns an undecodable reply on the $rid topic into 502, and drops one on a mirror topic', () => {
    const { bridge, drops } = setup()
    const got: Outcome[] = []
    const start = bridge.call(call(), o => got.push(o))
    bridge.handleReply('$res/svc/a', Buffer.from('garbage'), false)
    expect(drops).toEqual(['undecodable'])
    expect(got).toEqual([])
    if (start.ok) bridge.handleReply(`$res/svc/$rid/${start.id}`, Buffer.from('garbage'), false)
    expect(got).toMatchObject([{ kind: 'error', code: 'RTW_BAD_REPLY' }])
  })

  it('drops a retained reply without looking at it', () => {
    const { bridge, drops } = setup()
    const got: Outcome[] = []
    const start = bridge.call(call(), o => got.push(o))
    if (start.ok) bridge.handleReply(`$res/svc/$rid/${start.id}`, Buffer.from('{"status":200}'), true)
    expect(got).toEqual([])
    expect(drops).toEqual(['retained'])
    bridge.correlator.failAll('RTW_SHUTTING_DOWN')
  })
})

describe('Bridge.handleCallerRequest (MQTT-native callers)', () => {
  const env = (v: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify(v))

  it('rewrites the id and replyTo, and answers the caller in its inbox with its own id', () => {
    const { bridge, sent } = setup()
    const out = bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: 'mine', replyTo: '$inbox/dev/r', method: 'GET', body: 'b' }))
    expect(out).not.toBeNull()
    const fwd = json(out ?? Buffer.alloc(0))
    expect(fwd.id).not.toBe('mine')
    expect(fwd).toMatchObject({ method: 'GET', path: '/x', body: 'b', replyTo: `$res/svc/$rid/${String(fwd.id)}` })
    bridge.handleReply(fwd.replyTo as string, Buffer.from('{"status":201,"body":"done"}'), false)
    expect(sent.map(s => [s.topic, json(s.payload)])).toEqual([['$inbox/dev/r', { id: 'mine', status: 201, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'done' }]])
  })

  it('answers errors in the inbox: 404, 400 target, 400 timeout, 400 malformed', () => {
    const { bridge, sent } = setup()
    expect(bridge.handleCallerRequest('dev', '$req/nobody/x', env({ id: '1', replyTo: '$inbox/dev/r' }))).toBeNull()
    expect(bridge.handleCallerRequest('dev', '$req/svc/$x', env({ id: '2', replyTo: '$inbox/dev/r' }))).toBeNull()
    expect(bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: '3', replyTo: '$inbox/dev/r', timeout: 5001 }))).toBeNull()
    expect(bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: '4', replyTo: '$inbox/dev/r', method: 7 }))).toBeNull()
    const replies = sent.map(s => json(s.payload))
    expect(replies.map(r => [r.id, r.status, (JSON.parse(r.body as string) as { error: { code: string } }).error.code])).toEqual([
      ['1', 404, 'RTW_NO_RESPONDER'], ['2', 400, 'RTW_BAD_TARGET'], ['3', 400, 'RTW_BAD_TIMEOUT'], ['4', 400, 'RTW_BAD_REQUEST']
    ])
    expect(new Set(sent.map(s => s.topic))).toEqual(new Set(['$inbox/dev/r']))
  })

  it('drops, without answering, a request whose replyTo is not the caller\'s own inbox', () => {
    const { bridge, sent, drops } = setup()
    expect(bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: '1', replyTo: '$inbox/other/r' }))).toBeNull()
    expect(bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: '2', replyTo: '$inbox/other/r', method: 'bad' }))).toBeNull()
    expect(sent).toEqual([])
    expect(drops).toEqual(['bad-request', 'bad-request'])
  })

  it('times the request out and tells the caller 504', () => {
    vi.useFakeTimers()
    try {
      const { bridge, sent } = setup()
      bridge.handleCallerRequest('dev', '$req/svc/x', env({ id: 't', replyTo: '$inbox/dev/r', timeout: 20 }))
      vi.advanceTimersByTime(19)
      expect(sent).toEqual([])
      vi.advanceTimersByTime(1)
      expect(sent.map(s => json(s.payload))).toMatchObject([{ id: 't', status: 504 }])
    } finally {
      vi.useRealTimers()
    }
  })
})
