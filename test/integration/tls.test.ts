// TLS: with tlsCertFile and tlsKeyFile set, the HTTP port serves https and wss
// and the MQTT port serves mqtts. The certificate is self-signed, made here
// with openssl; clients trust it through their `ca` option or --cafile.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTlsGateway, type TestCert } from '../helpers/certs.js'
import mqtt from 'mqtt'
import type { TestGateway } from '../helpers/gateway.js'
import { connectClient, recordMessages, subscribe } from '../helpers/mqtt.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { startProcess } from '../helpers/processes.js'
import { connectPacket } from '../helpers/raw-mqtt.js'
import { ConfigError, loadConfig } from '../../gateway/config.js'

let cert: TestCert
let ca: Buffer
let gw: TestGateway
let echo: Responder
let httpsUrl: string
let mqttsUrl: string
let wssUrl: string

beforeAll(async () => {
  ;({ gw, cert } = await startTlsGateway('rtw-tls-'))
  ca = readFileSync(cert.certFile)
  httpsUrl = `https://127.0.0.1:${gw.httpPort}`
  mqttsUrl = `mqtts://127.0.0.1:${gw.mqttPort}`
  wssUrl = `wss://127.0.0.1:${gw.httpPort}${gw.config.wsPath}`
  echo = await startEcho(mqttsUrl, '$req/echo/#', { ca })
})
afterAll(async () => {
  await echo?.close()
  await gw?.close()
  cert?.remove()
})

interface HttpsAnswer { status: number, headers: Record<string, unknown>, body: string }

async function httpsCall (path: string, method = 'GET', body?: string, trust = true): Promise<HttpsAnswer> {
  return await new Promise((resolve, reject) => {
    const req = request(`${httpsUrl}${path}`, { method, ...(trust ? { ca } : {}), agent: false }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('https on the HTTP port', () => {
  it('answers REST over https, verified against the self-signed certificate', async () => {
    const res = await httpsCall('/api/echo/tls', 'POST', 'over tls')
    expect(res.status).toBe(200)
    expect(res.body).toBe('over tls')
    expect((await httpsCall('/healthz')).status).toBe(200)
  })

  it('refuses a client that does not trust the certificate, and keeps serving', async () => {
    await expect(httpsCall('/healthz', 'GET', undefined, false)).rejects.toThrow(/self[- ]signed|certificate/i)
    expect((await httpsCall('/healthz')).status).toBe(200)
  })

  it('does not speak plain HTTP on the TLS port', async () => {
    const answer = await new Promise<string>(resolve => {
      const s = netConnect({ port: gw.httpPort, host: '127.0.0.1' })
      let text = ''
      s.on('data', (c: Buffer) => { text += c.toString('latin1') })
      s.on('error', () => resolve(text))
      s.on('close', () => resolve(text))
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    expect(answer).not.toMatch(/"status":"ok"/)
  })
})

describe('mqtts on the MQTT port and wss on the HTTP port', () => {
  it('round-trips a message over mqtts with MQTT.js', async () => {
    const sub = await connectClient(mqttsUrl, { ca })
    const pub = await connectClient(mqttsUrl, { ca })
    try {
      await subscribe(sub, 'tls/x')
      const got = recordMessages(sub)
      await pub.publishAsync('tls/x', 'secure', { qos: 1 })
      await waitFor(() => got.length === 1)
      expect(got[0]?.payload.toString()).toBe('secure')
    } finally {
      await sub.endAsync()
      await pub.endAsync()
    }
  })

  it('round-trips a request over wss with MQTT.js (MQTT-native caller)', async () => {
    const c = await connectClient(wssUrl, { ca, clientId: 'wss-caller' })
    try {
      await subscribe(c, '$inbox/wss-caller/#')
      const inbox = recordMessages(c)
      await c.publishAsync('$req/echo/wss', JSON.stringify({ id: '1', replyTo: '$inbox/wss-caller/r', body: 'hi' }), { qos: 1 })
      await waitFor(() => inbox.length === 1)
      expect(JSON.parse(inbox[0]!.payload.toString())).toMatchObject({ id: '1', status: 200, body: 'hi' })
    } finally {
      await c.endAsync()
    }
  })

  it('works with mosquitto_pub and mosquitto_sub --cafile', async () => {
    const sub = startProcess('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '--cafile', cert.certFile, '-t', 'tls/mosq', '-C', '1', '-v'])
    try {
      // mosquitto_sub is subscribed once its subscription shows up in the broker.
      await waitFor(() => gw.app.broker.subscriptions.hasMatch('tls/mosq'), { what: 'mosquitto_sub subscribed' })
      const pub = await runCommand('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '--cafile', cert.certFile, '-t', 'tls/mosq', '-m', 'from mosquitto', '-q', '1'])
      expect(pub.code, pub.out).toBe(0)
      await sub.waitForOutput(/tls\/mosq from mosquitto/)
      expect((await sub.waitForExit()).code).toBe(0)
    } finally {
      await sub.killGroup()
    }
  })

  it('refuses mosquitto_pub without the CA, and a plaintext MQTT client, and keeps serving', async () => {
    const untrusted = await runCommand('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '--capath', cert.dir + '/none', '-t', 'tls/x', '-m', 'x'])
    expect(untrusted.code).not.toBe(0)
    const plain = await new Promise<boolean>(resolve => {
      const s = netConnect({ port: gw.mqttPort, host: '127.0.0.1' })
      let connack = false
      s.on('data', (c: Buffer) => { if (c[0] === 0x20) connack = true })
      s.on('error', () => {})
      s.on('close', () => resolve(connack))
      s.write(connectPacket('plain'))
    })
    expect(plain).toBe(false)
    const c = await connectClient(mqttsUrl, { ca })
    await c.endAsync()
  })

  it('refuses an MQTT.js client that does not trust the certificate', async () => {
    const c = mqtt.connect(mqttsUrl, { reconnectPeriod: 0, connectTimeout: 5_000 })
    const err = await new Promise<Error>(resolve => c.once('error', resolve))
    expect(err.message).toMatch(/self[- ]signed|certificate/i)
    c.end(true)
  })

  it('closes a garbled TLS handshake, survives clients that vanish after it, and keeps serving', async () => {
    const garbled = await new Promise<boolean>(resolve => {
      const s = netConnect({ port: gw.mqttPort, host: '127.0.0.1' })
      s.on('error', () => {})
      s.on('close', () => resolve(true))
      s.resume()
      s.write(Buffer.from('\x16\x03\x01\x00\x05hello', 'latin1'))
    })
    expect(garbled).toBe(true)
    const s = tlsConnect({ port: gw.mqttPort, host: '127.0.0.1', ca, servername: 'localhost' })
    await new Promise<void>(resolve => s.once('secureConnect', () => resolve()))
    s.destroy()
    const c = await connectClient(mqttsUrl, { ca })
    await c.endAsync()
  })
})

describe('TLS configuration', () => {
  it('stops start-up with a ConfigError naming the key when a file cannot be read, as the config loads', () => {
    expect(() => loadConfig({ overrides: { httpPort: 0, mqttPort: 0, logLevel: 'silent', tlsCertFile: join(cert.dir, 'missing.pem'), tlsKeyFile: cert.keyFile } }))
      .toThrow(/^tlsCertFile .*missing\.pem: cannot read it/)
  })

  it('needs both the certificate and the key', () => {
    expect(() => loadConfig({ overrides: { tlsCertFile: cert.certFile } })).toThrow(ConfigError)
  })
})

async function runCommand (cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number | null, out: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { out += c.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} did not finish: ${out}`)) }, timeoutMs)
    child.on('exit', code => { clearTimeout(timer); resolve({ code, out }) })
  })
}
