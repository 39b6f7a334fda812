// Reply rules: the first reply wins; late, duplicate, unknown, retained,
// undecodable and wrong-service replies are dropped and counted, and never
// reach another caller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, getStats, type Stats, type TestGateway } from '../helpers/gateway.js'
import { Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'

type DropReason = keyof Stats['dropped']

describe('reply handling', () => {
  let gw: TestGateway
  let held: Responder

  beforeAll(async () => {
    gw = await startGateway()
    held = await Responder.start(gw.mqttUrl, ['$req/held/#', '$req/other/#'])
  })
  afterAll(async () => {
    await held?.close()
    await gw?.close()
  })

  /** Waits until the counter for reason has grown by n since `before`. */
  async function dropsReach (reason: DropReason, before: Stats, n = 1): Promise<Stats> {
    return await waitFor(async () => {
      const s = await getStats(gw.httpUrl)
      return s.dropped[reason] >= before.dropped[reason] + n ? s : undefined
    }, { what: `dropped.${reason} to grow by ${n}` })
  }

  /** Starts a REST call on service held and returns it with the request the responder saw. */
  async function call (path: string, query = 'timeout=10', body = path): Promise<{ response: Promise<Response>, req: NonNullable<Responder['requests'][number]> }> {
    const seen = held.requests.length
    const response = fetch(`${gw.httpUrl}/api/held/${path}?${query}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
    // Calls may run concurrently: wait for this call's own request, by its body.
    const req = await waitFor(() => held.requests.slice(seen).find(r => r.env.body === body), { what: `request ${path} at the responder` })
    return { response, req }
  }

  it('accepts a reply on the mirror topic ($req swapped for $res), id in the envelope', async () => {
    const { response, req } = await call('mirror/a')
    expect(req.topic).toBe('$req/held/mirror/a')
    await held.reply(req, { status: 201, headers: { 'content-type': 'text/plain' }, body: 'via mirror' }, { topic: '$res/held/mirror/a' })
    const res = await response
    expect(res.status).toBe(201)
    expect(await res.text()).toBe('via mirror')
  })

  it('reads an unchanged request envelope on the mirror topic as 200 with the request body and content type', async () => {
    const seen = held.requests.length
    const response = fetch(`${gw.httpUrl}/api/held/echo-like?timeout=10`, { method: 'PUT', body: '{"x":[1,2]}', headers: { 'content-type': 'application/json', 'x-other': 'not echoed' } })
    const [req] = (await held.waitForRequests(seen + 1)).slice(seen)
    if (req === undefined) throw new Error('no request')
    await held.publish('$res' + req.topic.slice(4), req.raw)
    const res = await response
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    // Request headers other than the content type are not turned into response headers.
    expect(res.headers.get('x-other')).toBeNull()
    expect(await res.text()).toBe('{"x":[1,2]}')
  })

  it('lets the first reply win and drops a duplicate (same topic, then the mirror)', async () => {
    const before = await getStats(gw.httpUrl)
    const { response, req } = await call('dup')
    await held.reply(req, { body: 'first' })
    await held.reply(req, { body: 'second' })
    await held.reply(req, { body: 'third' }, { topic: '$res/held/dup' })
    const res = await response
    expect(await res.text()).toBe('first')
    const after = await dropsReach('duplicate', before, 2)
    expect(after.dropped.duplicate).toBe(before.dropped.duplicate + 2)
    expect(after.dropped.late).toBe(before.dropped.late)
  })

  it('drops a reply that comes after the timeout, and never gives it to a caller still waiting', async () => {
    const before = await getStats(gw.httpUrl)
    const a = await call('late/a', 'timeout=200ms', 'A')
    const b = await call('late/b', 'timeout=10', 'B')
    const resA = await a.response
    expect(resA.status).toBe(504)

    // A's reply arrives late, on its own topic and on the mirror; B still waits on the same service.
    await held.reply(a.req, { body: 'reply for A' })
    await held.reply(a.req, { body: 'reply for A (mirror)' }, { topic: '$res/held/late/b' })
    const afterLate = await dropsReach('late', before, 2)
    expect(afterLate.inFlight).toBe(1)

    await held.reply(b.req, { body: 'reply for B' })
    const resB = await b.response
    expect(resB.status).toBe(200)
    expect(await resB.text()).toBe('reply for B')
    expect(afterLate.timedOut).toBe(before.timedOut + 1)
  })

  it('keeps concurrent callers apart when replies arrive in reverse order', async () => {
    const before = await getStats(gw.httpUrl)
    const calls = await Promise.all(['p', 'q', 'r'].map(async n => await call(`cross/${n}`, 'timeout=10', n)))
    // Answer in reverse order; each reply's body names its own request.
    for (const c of [...calls].reverse()) await held.reply(c.req, { body: `for ${c.req.env.body ?? ''}` })
    const bodies = await Promise.all(calls.map(async c => await (await c.response).text()))
    expect(bodies).toEqual(['for p', 'for q', 'for r'])
    const s = await getStats(gw.httpUrl)
    expect(s.dropped).toEqual(before.dropped)
  })

  it('drops and counts a reply with an unknown id, on the $rid topic and on the mirror', async () => {
    const before = await getStats(gw.httpUrl)
    await held.publish('$res/held/$rid/no-such-id', JSON.stringify({ status: 200, body: 'x' }))
    await held.publish('$res/held/some/path', JSON.stringify({ id: 'no-such-id-either', status: 200, body: 'x' }))
    // [P-3.8] no request with these ids was ever sent to this responder: counted as not-asked.
    await dropsReach('not-asked', before, 2)
  })

  it('never takes a retained message as a reply, nor stores it', async () => {
    const before = await getStats(gw.httpUrl)
    const { response, req } = await call('retained', 'timeout=300ms')
    await held.reply(req, { body: 'retained reply' }, { retain: true })
    await held.reply(req, { body: 'retained mirror' }, { retain: true, topic: '$res/held/retained' })
    const res = await response
    expect(res.status).toBe(504)
    const after = await dropsReach('retained', before, 2)
    expect(after.dropped.retained).toBe(before.dropped.retained + 2)
    expect(await gw.app.broker.readRetained(req.env.replyTo)).toBeNull()
    expect(await gw.app.broker.readRetained('$res/held/retained')).toBeNull()
  })

  it('drops an undecodable reply on a mirror topic (no id to match), and the caller times out', async () => {
    const before = await getStats(gw.httpUrl)
    const { response } = await call('garbage', 'timeout=300ms')
    await held.publish('$res/held/garbage', 'not json at all')
    await held.publish('$res/held/garbage', JSON.stringify({ status: 200, body: 'no id' }))
    expect((await response).status).toBe(504)
    await dropsReach('undecodable', before, 2)
  })

  it('drops a reply published under another service, then accepts the right one', async () => {
    const before = await getStats(gw.httpUrl)
    const { response, req } = await call('svc')
    await held.reply(req, { body: 'forged' }, { topic: `$res/other/$rid/${req.env.id}` })
    await held.reply(req, { body: 'forged mirror' }, { topic: '$res/other/svc' })
    await dropsReach('wrong-service', before, 2)
    await held.reply(req, { body: 'genuine' })
    const res = await response
    expect(await res.text()).toBe('genuine')
  })
})
