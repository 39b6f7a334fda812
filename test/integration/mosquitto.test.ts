// Debian's mosquitto clients, which nobody here wrote, against the gateway:
// the original project's shell-pipeline responder, mosquitto_rr as an
// MQTT-native caller, mosquitto_sub/mosquitto_pub for live updates and ACLs.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { Responder, startEcho } from '../helpers/responders.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const run = promisify(execFile)

// The responder from the issue, verbatim apart from the port: every request is
// republished unchanged on its mirror topic.
const PIPELINE = 'mosquitto_sub -h 127.0.0.1 -p "$PORT" -v -t \'$req/realtimeweb/#\' | ' +
  'while read -r topic payload; do mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "\\$res${topic#\\$req}" -m "$payload"; done'

describe('mosquitto clients', () => {
  let gw: TestGateway
  const procs: TestProcess[] = []

  beforeAll(async () => {
    // The pipeline answers with a fresh mosquitto_pub client each time, not the one that was sent the request [P-3.8].
    gw = await startGateway({ openReplies: 'realtimeweb' })
  })
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.killGroup()
  })
  afterAll(async () => {
    await gw?.close()
  })

  describe('the mosquitto_sub | mosquitto_pub mirror responder', () => {
    let pipeline: TestProcess

    beforeAll(async () => {
      pipeline = startProcess('bash', ['-c', PIPELINE], { env: { PORT: String(gw.mqttPort) } })
      await waitFor(() => gw.app.broker.subscriptions.hasMatch('$req/realtimeweb/x'), { what: 'the pipeline to subscribe' })
    })
    afterAll(async () => {
      await pipeline?.killGroup()
    })

    it('makes POST /api/realtimeweb/x return 200 with the request body and content type', async () => {
      const body = '{"hello": "world  with  spaces", "list": [1, 2, 3], "quote": "a \\"q\\" \\\\ b"}'
      const res = await fetch(`${gw.httpUrl}/api/realtimeweb/x?timeout=10`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('application/json')
      expect(await res.text()).toBe(body)
    })

    it('round-trips a text body and a binary body through the shell', async () => {
      const text = 'tab\there, unicode żółw, trailing spaces   '
      const t = await fetch(`${gw.httpUrl}/api/realtimeweb/t?timeout=10`, { method: 'POST', body: text, headers: { 'content-type': 'text/plain; charset=utf-8' } })
      expect(t.status).toBe(200)
      expect(await t.text()).toBe(text)

      const bytes = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x0d]), randomBytes(2048)])
      const b = await fetch(`${gw.httpUrl}/api/realtimeweb/b?timeout=10`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
      expect(b.status).toBe(200)
      expect(Buffer.from(await b.arrayBuffer()).equals(bytes)).toBe(true)
    })

    it('answers several concurrent callers each with their own body', async () => {
      const bodies = Array.from({ length: 8 }, (_, i) => `{"caller": ${i}}`)
      const results = await Promise.all(bodies.map(async (body, i) => {
        const res = await fetch(`${gw.httpUrl}/api/realtimeweb/c/${i}?timeout=10`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
        return [res.status, await res.text()]
      }))
      expect(results).toEqual(bodies.map(b => [200, b]))
    })
  })

  describe('mosquitto_rr as an MQTT-native caller (MQTT 3.1.1)', () => {
    let echo: Responder

    beforeAll(async () => {
      echo = await startEcho(gw.mqttUrl)
    })
    afterAll(async () => {
      await echo?.close()
    })

    const rr = async (topic: string, request: object): Promise<Record<string, unknown>> => {
      const { stdout } = await run('mosquitto_rr', [
        '-V', '311', '-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-W', '10',
        '-i', 'rr-caller', '-t', topic, '-e', '$inbox/rr-caller/reply', '-m', JSON.stringify(request)
      ], { timeout: 15_000 })
      return JSON.parse(stdout) as Record<string, unknown>
    }

    it('gets the reply in its own inbox, with its own id', async () => {
      const reply = await rr('$req/echo/rr/path', { id: 'rr-1', replyTo: '$inbox/rr-caller/reply', method: 'PATCH', query: 'a=1', body: 'from mosquitto_rr' })
      expect(reply.id).toBe('rr-1')
      expect(reply.status).toBe(200)
      expect(reply.body).toBe('from mosquitto_rr')
      expect((reply.headers as Record<string, string>)['x-echo-method']).toBe('PATCH')
      expect((reply.headers as Record<string, string>)['x-echo-path']).toBe('/rr/path')
      expect((reply.headers as Record<string, string>)['x-echo-query']).toBe('a=1')
      // The responder saw the gateway's id, not the caller's.
      const seen = echo.requests.at(-1)
      expect(seen?.env.id).not.toBe('rr-1')
      expect(seen?.env.replyTo).toBe(`$res/echo/$rid/${seen?.env.id ?? ''}`)
    })

    it('gets a 404 error reply when no responder is subscribed', async () => {
      const reply = await rr('$req/nobody/x', { id: 'rr-2', replyTo: '$inbox/rr-caller/reply' })
      expect(reply.id).toBe('rr-2')
      expect(reply.status).toBe(404)
      expect(JSON.parse(reply.body as string)).toMatchObject({ error: { code: 'RTW_NO_RESPONDER' } })
    })
  })

  describe('mosquitto_sub and mosquitto_pub for live updates', () => {
    it('mosquitto_sub receives what POST /publish sends (200 delivered)', async () => {
      const sub = startProcess('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-v', '-C', '1', '-t', 'sensors/#'])
      procs.push(sub)
      await waitFor(() => gw.app.broker.subscriptions.hasMatch('sensors/kitchen/temp'), { what: 'mosquitto_sub to subscribe' })
      const res = await fetch(`${gw.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'sensors/kitchen/temp', payload: '21.5 C', qos: 1 }), headers: { 'content-type': 'application/json' } })
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ delivered: true })
      const exit = await sub.waitForExit()
      expect(exit.code).toBe(0)
      expect(sub.output()).toBe('sensors/kitchen/temp 21.5 C\n')
    })

    it('GET /retained returns what mosquitto_pub -r published', async () => {
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-r', '-t', 'devices/d1/state', '-m', '{"on":true}'])
      const res = await waitFor(async () => {
        const r = await fetch(`${gw.httpUrl}/retained/devices/d1/state`)
        return r.status === 200 ? r : undefined
      }, { what: 'the retained message' })
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(res.headers.get('x-mqtt-qos')).toBe('1')
      expect(await res.text()).toBe('{"on":true}')
    })

    it('refuses mosquitto_sub on $res/# and on another client\'s inbox', async () => {
      for (const [id, topic] of [['spy', '$res/#'], ['spy', '$inbox/victim/#'], ['spy', '$inbox/#']] as const) {
        const sub = startProcess('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-i', id, '-t', topic, '-W', '5'])
        procs.push(sub)
        await sub.waitForOutput(/All subscription requests were denied/)
      }
    })

    it('delivers nothing that mosquitto_pub publishes into another client\'s inbox', async () => {
      const held = await Responder.start(gw.mqttUrl, '$req/hold/#')
      try {
        // The victim subscribes to its inbox, then makes a request the responder holds.
        const victim = startProcess('mosquitto_rr', ['-V', '311', '-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-W', '10',
          '-i', 'victim', '-t', '$req/hold/v', '-e', '$inbox/victim/r', '-m', JSON.stringify({ id: 'genuine', replyTo: '$inbox/victim/r', body: 'real' })])
        procs.push(victim)
        const [req] = await held.waitForRequests(1)
        if (req === undefined) throw new Error('no request')
        // While it waits, someone else forges its reply...
        await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-q', '1', '-t', '$inbox/victim/r', '-m', '{"id":"genuine","status":200,"body":"forged"}'])
        // ...and only then does the genuine reply go out. mosquitto_rr prints the first message it gets.
        await held.reply(req, { body: 'real' })
        const exit = await victim.waitForExit()
        expect(exit.code).toBe(0)
        expect(JSON.parse(victim.output())).toMatchObject({ id: 'genuine', status: 200, body: 'real' })
      } finally {
        await held.close()
      }
    })
  })
})
