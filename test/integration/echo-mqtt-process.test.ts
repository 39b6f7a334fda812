// The echo server process (dist/echo-server/main.js) on its own MQTT client:
// mqtts with the CA from NODE_EXTRA_CA_CERTS, certificate verification, replies
// at ECHO_REPLY_QOS=1, an unsupported URL scheme, and SIGINT.
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTlsGateway, type TestCert } from '../helpers/certs.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const ECHO = 'dist/echo-server/main.js'
const procs: TestProcess[] = []
afterEach(async () => { await Promise.all(procs.splice(0).map(p => p.killGroup())) })

function startEcho (env: Record<string, string | undefined>): TestProcess {
  const p = startProcess('node', [ECHO], { env: { RTW_HOST: undefined, RTW_MQTT_PORT: undefined, ECHO_MQTT_URL: undefined, ECHO_TOKEN: undefined, ECHO_REPLY_QOS: undefined, NODE_EXTRA_CA_CERTS: undefined, ...env } })
  procs.push(p)
  return p
}

async function roundTrip (gw: TestGateway, body: string): Promise<string> {
  const res = await fetch(`${gw.httpUrl}/api/echo/p?timeout=10`, { method: 'POST', body })
  return `${res.status} ${await res.text()}`
}

describe('echo server process over mqtt://', () => {
  let gw: TestGateway
  beforeAll(async () => { gw = await startGateway() })
  afterAll(async () => { await gw?.close() })

  it('replies at QoS 1 with ECHO_REPLY_QOS=1', async () => {
    const p = startEcho({ ECHO_MQTT_URL: gw.mqttUrl, ECHO_REPLY_QOS: '1', ECHO_TOPICS: '$req/echo/#' })
    await p.waitForOutput(/answering \$req\/echo\/#/)
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => await roundTrip(gw, `q1 ${i}`)))
    expect(answers).toEqual(Array.from({ length: 50 }, (_, i) => `200 q1 ${i}`))
  })

  it('exits 0 on SIGINT', async () => {
    const p = startEcho({ RTW_HOST: '127.0.0.1', RTW_MQTT_PORT: String(gw.mqttPort), ECHO_TOPICS: '$req/echo/#' })
    await p.waitForOutput(/answering \$req\/echo\/#/)
    p.signal('SIGINT')
    expect(await p.waitForExit()).toEqual({ code: 0, signal: null })
    await waitFor(() => !gw.app.broker.subscriptions.hasMatch('$req/echo/x'), { what: 'the subscription to go' })
  })

  it('exits 1 with a clear message for a scheme it does not speak', async () => {
    const p = startEcho({ ECHO_MQTT_URL: `ws://127.0.0.1:${gw.httpPort}/mqtt` })
    expect(await p.waitForExit()).toEqual({ code: 1, signal: null })
    expect(p.output()).toMatch(/echo-server: unsupported scheme ws: .*use mqtt:\/\/ or mqtts:\/\//)
  })
})

/** POST over https (the gateway serves https when it serves mqtts), trusting ca. */
async function httpsRoundTrip (gw: TestGateway, ca: Buffer, body: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const req = request(`https://127.0.0.1:${gw.httpPort}/api/echo/p?timeout=10`, { method: 'POST', ca, agent: false }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve(`${res.statusCode} ${text}`))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('echo server process over mqtts://', () => {
  let cert: TestCert
  let gw: TestGateway
  beforeAll(async () => {
    ;({ gw, cert } = await startTlsGateway('rtw-echo-tls-'))
  })
  afterAll(async () => {
    await gw?.close()
    cert?.remove()
  })

  it('connects by name and by IP with the CA in NODE_EXTRA_CA_CERTS', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const p = startEcho({ ECHO_MQTT_URL: `mqtts://${host}:${gw.mqttPort}`, NODE_EXTRA_CA_CERTS: cert.certFile, ECHO_TOPICS: '$req/echo/#' })
      await p.waitForOutput(/answering \$req\/echo\/#/)
      expect(await httpsRoundTrip(gw, readFileSync(cert.certFile), `over tls to ${host}`)).toBe(`200 over tls to ${host}`)
      p.signal('SIGTERM')
      expect(await p.waitForExit()).toEqual({ code: 0, signal: null })
    }
  })

  it('verifies the certificate: without the CA it never connects, and keeps trying', async () => {
    const before = gw.app.broker.counters.refused
    const p = startEcho({ ECHO_MQTT_URL: `mqtts://localhost:${gw.mqttPort}`, ECHO_TOPICS: '$req/echo/#' })
    // Retries are seen by the gateway (each a failed handshake); the echo server tells the outage once.
    await waitFor(() => gw.app.broker.counters.refused - before >= 2 && /self-signed certificate/.test(p.output()), { what: 'two failed TLS attempts' })
    expect(p.output().match(/self-signed certificate/g)).toHaveLength(1)
    expect(p.output()).not.toMatch(/answering/)
    expect(p.exited).toBeUndefined()
  })
})
