// Attacks with crafted MQTT input: a replyTo with wildcards [P-4.6], a huge
// client id [P-12.8], and a correlation id guessed from X-Request-Id [P-5.1].
// Real MQTT.js, raw sockets and mosquitto_pub.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startGateway, getStats, type TestGateway } from '../helpers/gateway.js'
import { clientPool, connectClient, nextMessage, recordMessages, subscribe } from '../helpers/mqtt.js'
import { connectPacket, generate, rawConnect, subscribePacket } from '../helpers/raw-mqtt.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'

const run = promisify(execFile)

describe('attack: a replyTo with wildcards [P-4.6]', () => {
  let gw: TestGateway
  let echo: Responder
  const { client, endAll } = clientPool(() => gw.mqttUrl)
  beforeAll(async () => {
    gw = await startGateway()
    echo = await startEcho(gw.mqttUrl)
  })
  afterEach(endAll)
  afterAll(async () => {
    await echo?.close()
    await gw?.close()
  })

  it('is answered 400 RTW_BAD_REQUEST at the inbox level before the wildcard, and never routed', async () => {
    const caller = await client('dev-1')
    await subscribe(caller, '$inbox/dev-1/#')
    for (const [replyTo, answeredOn] of [['$inbox/dev-1/#', '$inbox/dev-1'], ['$inbox/dev-1/r/+', '$inbox/dev-1/r'], ['$inbox/dev-1/a/b+c/d', '$inbox/dev-1/a']]) {
      const answer = nextMessage(caller, t => t === answeredOn)
      caller.publish('$req/echo/x', JSON.stringify({ id: replyTo, replyTo, body: 'hi' }))
      const reply = JSON.parse((await answer).payload.toString()) as { id: string, status: number, body: string }
      expect(reply).toMatchObject({ id: replyTo, status: 400 })
      expect(JSON.parse(reply.body)).toMatchObject({ error: { code: 'RTW_BAD_REQUEST' } })
    }
    expect(echo.requests).toHaveLength(0)
  })

  it('from mosquitto_pub with a client id of "+", reaches no other client\'s inbox', async () => {
    const victim = await client('victim')
    await subscribe(victim, '$inbox/victim/#')
    const seen = recordMessages(victim)
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-V', '311', '-i', '+', '-q', '1', '-t', '$req/echo/x',
      '-m', JSON.stringify({ id: 'x', replyTo: '$inbox/+/r', body: 'forged' })])
    // The victim's own request still works, and it is the only thing the victim receives.
    const mine = nextMessage(victim, t => t === '$inbox/victim/r')
    victim.publish('$req/echo/x', JSON.stringify({ id: 'mine', replyTo: '$inbox/victim/r', body: 'real' }))
    expect(JSON.parse((await mine).payload.toString())).toMatchObject({ id: 'mine', status: 200, body: 'real' })
    expect(seen.map(m => m.topic)).toEqual(['$inbox/victim/r'])
    expect(echo.requests.map(r => r.env.body)).toEqual(['real'])
  })
})

describe('attack: a huge client id [P-12.8]', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('over 256 bytes gets CONNACK 2 and a closed connection; 256 bytes is fine; a connected client is unaffected', async () => {
    const victim = await connectClient(gw.mqttUrl, { clientId: 'victim' })
    try {
      await subscribe(victim, 'news/#')
      for (const id of ['x'.repeat(257), 'é'.repeat(129), 'y'.repeat(65_000)]) {
        const attacker = await rawConnect(gw.mqttPort)
        attacker.send(connectPacket(id))
        expect(await attacker.next('connack')).toMatchObject({ returnCode: 2 })
        expect(await attacker.closedWithin()).toBe(true)
      }
      const fine = await rawConnect(gw.mqttPort, 'z'.repeat(256))
      fine.destroy()
      const got = nextMessage(victim, t => t === 'news/1')
      await victim.publishAsync('news/1', 'still here', { qos: 1 })
      expect((await got).payload.toString()).toBe('still here')
    } finally {
      await victim.endAsync(true)
    }
  })
})

describe('attack: guessing the next correlation id from X-Request-Id [P-5.1]', () => {
  let gw: TestGateway
  let holder: Responder
  let forger: MqttClient
  beforeAll(async () => {
    gw = await startGateway()
    holder = await Responder.start(gw.mqttUrl, '$req/slow/#')
    forger = await connectClient(gw.mqttUrl, { clientId: 'forger' })
  })
  afterAll(async () => {
    await forger?.endAsync(true)
    await holder?.close()
    await gw?.close()
  })

  it('ids share no predictable part, and a reply to a guessed id answers no one', async () => {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const p = fetch(`${gw.httpUrl}/api/slow/x`, { method: 'POST', body: `r${i}` })
      const [req] = (await holder.waitForRequests(i + 1)).slice(i)
      await holder.reply(req!, { body: 'real' })
      const res = await p
      ids.push(res.headers.get('x-request-id') ?? '')
    }
    // The victim's request is in flight; the attacker tries the ids an old counter scheme would give it.
    const victim = fetch(`${gw.httpUrl}/api/slow/x`, { method: 'POST', body: 'victim' })
    const [pending] = (await holder.waitForRequests(4)).slice(3)
    const last = ids.at(-1)!
    const guesses = [last.slice(0, -1) + String.fromCharCode(last.charCodeAt(last.length - 1) + 1), ids[0]!.slice(0, 11) + pending!.env.id.slice(11)]
    const before = (await getStats(gw.httpUrl)).dropped['not-asked']
    for (const g of guesses) forger.publish(`$res/slow/$rid/${g}`, JSON.stringify({ id: g, status: 200, body: 'forged' }))
    // (The forger was sent no request either, so its replies are refused before their ids are even looked up [P-3.8].)
    await waitFor(async () => (await getStats(gw.httpUrl)).dropped['not-asked'] >= before + guesses.length, { what: 'the forged replies to be dropped' })
    await holder.reply(pending!, { body: 'real' })
    const res = await victim
    expect(await res.text()).toBe('real')
    // Consecutive ids differ in their 64-bit random part, not only in a counter.
    const heads = new Set([...ids, pending!.env.id].map(id => id.slice(0, 11)))
    expect(heads.size).toBe(4)
  })
})

describe('attack: a SUBSCRIBE filter over 100 levels [P-12.3]', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('gets SUBACK 0x80 for that filter only, and the connection stays and works; so does an UNSUBSCRIBE of one', async () => {
    const deep = Array(150).fill('a').join('/')
    const c = await rawConnect(gw.mqttPort, 'deep-1')
    try {
      c.send(subscribePacket(['ok/#', deep, Array(101).fill('b').join('/'), 'also/ok'], 7))
      const suback = await c.next('suback') as { messageId: number, granted: number[] }
      expect([suback.messageId, suback.granted]).toEqual([7, [0, 128, 128, 0]])
      c.send(generate({ cmd: 'unsubscribe', messageId: 8, unsubscriptions: [deep] }))
      expect(await c.next('unsuback')).toMatchObject({ messageId: 8 })
      expect(await c.closedWithin(300)).toBe(false)
      // Still subscribed to ok/#: a publish arrives.
      const pub = await connectClient(gw.mqttUrl, { clientId: 'deep-pub' })
      await pub.publishAsync('ok/1', 'still here', { qos: 0 })
      const got = await c.next('publish') as { topic: string, payload: Buffer }
      expect([got.topic, got.payload.toString()]).toEqual(['ok/1', 'still here'])
      await pub.endAsync(true)
    } finally {
      c.destroy()
    }
  })
})
