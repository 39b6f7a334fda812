// Attack: forged replies [P-3.8]. A reply to request `id` counts only from a
// client that was sent that request. The forgers here are even handed the
// real id (as if it had leaked), and still answer nobody. Real MQTT.js,
// mosquitto_pub, HTTP.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { getStats, startGateway, type TestGateway } from '../helpers/gateway.js'
import { clientPool, connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { mintToken } from '../../gateway/cli/token.js'

const run = promisify(execFile)

/** Waits until /stats has counted n more not-asked replies than `before`. */
async function notAsked (gw: TestGateway, before: number, n: number, token?: string): Promise<void> {
  await waitFor(async () => (await getStats(gw.httpUrl, token)).dropped['not-asked'] >= before + n, { what: `${n} replies dropped as not-asked` })
}

describe('attack: forged replies without auth', () => {
  let gw: TestGateway
  let holder: Responder
  const { client, endAll } = clientPool(() => gw.mqttUrl)
  beforeAll(async () => {
    gw = await startGateway()
    holder = await Responder.start(gw.mqttUrl, '$req/bank/#', undefined, { clientId: 'bank-responder' })
  })
  afterEach(endAll)
  afterAll(async () => {
    await holder?.close()
    await gw?.close()
  })

  it('a client subscribed to no $req filter, MQTT.js or mosquitto_pub, cannot answer a REST call; the caller gets the real reply', async () => {
    const forger = await client('forger')
    const pending = fetch(`${gw.httpUrl}/api/bank/balance`, { method: 'GET' })
    const req = (await holder.waitForRequests(1))[0]!
    const before = (await getStats(gw.httpUrl)).dropped['not-asked']
    const forged = JSON.stringify({ id: req.env.id, status: 200, body: 'balance: 1,000,000' })
    await forger.publishAsync(req.env.replyTo, forged, { qos: 1 })
    await forger.publishAsync('$res/bank/balance', forged, { qos: 1 })
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', '311', '-q', '1', '-t', req.env.replyTo, '-m', forged])
    await notAsked(gw, before, 3)
    await holder.reply(req, { body: 'balance: 12' })
    const res = await pending
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('balance: 12')
  })

  it('a responder of another service, or one that subscribed after the request was routed, cannot answer it', async () => {
    const pending = fetch(`${gw.httpUrl}/api/bank/transfer`, { method: 'POST', body: 'to=alice' })
    const req = (await holder.waitForRequests(2))[1]!
    const other = await client('other-responder')
    await subscribe(other, '$req/other/#')
    const late = await client('late-responder')
    await subscribe(late, '$req/bank/#')
    const before = (await getStats(gw.httpUrl)).dropped['not-asked']
    for (const c of [other, late]) await c.publishAsync(req.env.replyTo, JSON.stringify({ id: req.env.id, status: 200, body: 'forged' }), { qos: 1 })
    await notAsked(gw, before, 2)
    await holder.reply(req, { status: 201, body: 'done' })
    const res = await pending
    expect(res.status).toBe(201)
    expect(await res.text()).toBe('done')
  })

  it('an MQTT-native caller\'s request cannot be answered by a forger either', async () => {
    const caller = await client('caller-1')
    await subscribe(caller, '$inbox/caller-1/#')
    const forger = await client('forger-2')
    caller.publish('$req/bank/x', JSON.stringify({ id: 'c1', replyTo: '$inbox/caller-1/r', body: 'q' }))
    const req = (await holder.waitForRequests(3))[2]!
    const before = (await getStats(gw.httpUrl)).dropped['not-asked']
    await forger.publishAsync(req.env.replyTo, JSON.stringify({ id: req.env.id, status: 200, body: 'forged' }), { qos: 1 })
    await notAsked(gw, before, 1)
    const answer = nextMessage(caller, t => t === '$inbox/caller-1/r')
    await holder.reply(req, { body: 'real' })
    expect(JSON.parse((await answer).payload.toString())).toMatchObject({ id: 'c1', body: 'real' })
  })
})

describe('attack: forged replies with auth, from a client that may serve the service', () => {
  const SECRET = 'attack-forged-secret'
  let gw: TestGateway
  let holder: Responder
  let forger: MqttClient
  beforeAll(async () => {
    gw = await startGateway({ jwtSecret: SECRET })
    const serve = await mintToken(['--sub', 'bank', '--serve', 'bank', '--secret', SECRET], {})
    holder = await Responder.start(gw.mqttUrl, '$req/bank/#', undefined, { username: 'u', password: serve, clientId: 'bank-1' })
    // Another holder of the serve grant, connected but not subscribed: it was never sent the request.
    forger = await connectClient(gw.mqttUrl, { username: 'u', password: serve, clientId: 'bank-2' })
  })
  afterAll(async () => {
    await forger?.endAsync(true)
    await holder?.close()
    await gw?.close()
  })

  it('is refused too: only the connection that was sent the request may answer it', async () => {
    const caller = await mintToken(['--sub', 'web', '--call', 'bank', '--secret', SECRET], {})
    const pending = fetch(`${gw.httpUrl}/api/bank/x`, { headers: { authorization: `Bearer ${caller}` } })
    const req = (await holder.waitForRequests(1))[0]!
    // With auth on, /stats needs the $SYS/# grant, as /metrics does.
    const ops = await mintToken(['--sub', 'ops', '--subscribe', '$SYS/#', '--secret', SECRET], {})
    const before = (await getStats(gw.httpUrl, ops)).dropped['not-asked']
    await forger.publishAsync(req.env.replyTo, JSON.stringify({ id: req.env.id, status: 200, body: 'forged' }), { qos: 1 })
    await notAsked(gw, before, 1, ops)
    await holder.reply(req, { body: 'real' })
    expect(await (await pending).text()).toBe('real')
  })
})
