// Fuzzing a gateway process: 20,000+ random and mutated MQTT packets over many
// raw TCP connections and 2,000+ mutated HTTP requests over raw sockets. After
// it the gateway still answers a REST echo and an MQTT round trip, has not
// answered any garbage with a 500, kept its log short, and its RSS is back
// within 50 MB of where it started.
//
// Deterministic: every byte comes from a seeded PRNG. Reproduce a failure with
// RTW_FUZZ_SEED=<the seed in the failure message> npx vitest run test/integration/security-fuzz.test.ts
// (RTW_FUZZ_VERBOSE=1 also prints what the gateway logged during the run).
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { connectClient, recordMessages, subscribe } from '../helpers/mqtt.js'
import { startEcho, type Responder } from '../helpers/responders.js'
import { waitFor } from '../helpers/wait.js'
import { connectPacket, generate, remainingLength } from '../helpers/raw-mqtt.js'

const SEED = Number(process.env.RTW_FUZZ_SEED ?? 0x5eed4)
const MQTT_CONNECTIONS = 1_000
const PACKETS_PER_CONNECTION = 20
const HTTP_REQUESTS = 2_000
const CONCURRENCY = 50

const root = join(import.meta.dirname, '..', '..')
const MAIN_JS = join(root, 'dist', 'gateway', 'main.js')

/** mulberry32: small, fast and good enough to drive mutations reproducibly. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Rand {
  constructor (readonly next: () => number) {}
  int (n: number): number { return Math.floor(this.next() * n) }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] as T }
  chance (p: number): boolean { return this.next() < p }
  bytes (n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.int(256)
    return b
  }

  text (n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789/+#$%.-_ \u0000\u00e9\u65e5'): string {
    let s = ''
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)]
    return s
  }
}

// ---------------------------------------------------------------- MQTT packets

function validPacket (r: Rand, id: number): Buffer {
  const topic = r.pick(['a', 'a/b', 'fuzz/x/y', '$req/echo/x', '$res/echo/$rid/1', '$inbox/c/r', '$SYS/x', 'é/日本', r.text(1 + r.int(30))])
  switch (r.int(9)) {
    case 0: return generate({ cmd: 'publish', topic, payload: r.bytes(r.int(64)), qos: 0, retain: r.chance(0.1), dup: false })
    case 1: return generate({ cmd: 'publish', topic, payload: r.bytes(r.int(64)), qos: 1, messageId: 1 + r.int(65535), retain: false, dup: false })
    case 2: return generate({ cmd: 'subscribe', messageId: 1 + r.int(65535), subscriptions: [{ topic: r.pick(['#', '+/x', 'a/#', '$req/echo/#', '$res/#', topic]), qos: r.int(2) }] })
    case 3: return generate({ cmd: 'unsubscribe', messageId: 1 + r.int(65535), unsubscriptions: [topic] })
    case 4: return Buffer.from([0xc0, 0x00]) // PINGREQ
    case 5: return generate({ cmd: 'puback', messageId: 1 + r.int(65535) })
    case 6: return generate({ cmd: 'pubrel', messageId: 1 + r.int(65535) })
    case 7: return generate({ cmd: 'publish', topic: '$req/echo/x', payload: JSON.stringify({ id: String(id), replyTo: `$inbox/fz${id}/r`, body: r.text(8) }), qos: 0, retain: false, dup: false })
    default: return connectPacket(`fz${id}`, r.chance(0.3) ? { will: { topic: 'w/' + r.text(3), payload: r.bytes(4), qos: r.int(2), retain: false } } : {})
  }
}

function mutate (r: Rand, p: Buffer): Buffer {
  switch (r.int(8)) {
    case 0: { // bit flips
      const b = Buffer.from(p)
      for (let i = 1 + r.int(3); i > 0; i--) { const at = r.int(b.length); b[at] = (b[at] as number) ^ (1 << r.int(8)) }
      return b
    }
    case 1: return p.subarray(0, r.int(p.length)) // truncation
    case 2: { // length-field lie: any remaining length, or a varint of 5 continuation bytes
      let i = 1
      while (i < p.length && ((p[i] as number) & 0x80) !== 0) i++
      const lie = r.chance(0.2) ? Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]) : remainingLength(r.chance(0.5) ? r.int(p.length * 2 + 1) : r.int(268_435_455))
      return Buffer.concat([p.subarray(0, 1), lie, p.subarray(i + 1)])
    }
    case 3: return r.bytes(1 + r.int(200)) // random bytes
    case 4: { // random type byte
      const b = Buffer.from(p)
      b[0] = r.int(256)
      return b
    }
    case 5: { // inserted garbage
      const at = r.int(p.length + 1)
      return Buffer.concat([p.subarray(0, at), r.bytes(1 + r.int(8)), p.subarray(at)])
    }
    case 6: { // ill-formed UTF-8 or NUL in the first string
      const b = Buffer.from(p)
      if (b.length > 6) b[4 + r.int(Math.min(4, b.length - 5))] = r.pick([0x00, 0xc0, 0xed, 0xff, 0x80])
      return b
    }
    default: return p // some valid packets in between
  }
}

/** One connection: usually a valid CONNECT first, then packets, valid and mutated, in random chunks. */
function connectionScript (r: Rand, id: number): Buffer[] {
  const packets: Buffer[] = []
  if (r.chance(0.8)) packets.push(connectPacket(`fz${id}`, { keepalive: 0 }))
  while (packets.length < PACKETS_PER_CONNECTION) packets.push(r.chance(0.7) ? mutate(r, validPacket(r, id)) : validPacket(r, id))
  const stream = Buffer.concat(packets)
  const chunks: Buffer[] = []
  for (let i = 0; i < stream.length;) {
    const n = 1 + r.int(r.chance(0.5) ? 16 : 512)
    chunks.push(stream.subarray(i, i + n))
    i += n
  }
  return chunks
}

/** Sends the chunks, half-closes, and waits (bounded) for the gateway to close. */
async function playMqtt (port: number, chunks: Buffer[]): Promise<void> {
  await new Promise<void>(resolve => {
    const s = netConnect({ port, host: '127.0.0.1' })
    const timer = setTimeout(() => s.destroy(), 3_000)
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve() })
    s.resume()
    s.once('connect', () => {
      for (const c of chunks) if (!s.destroyed) s.write(c)
      s.end()
    })
  })
}

// ---------------------------------------------------------------- HTTP requests

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD', 'PROPFIND', 'CONNECT', 'TRACE', 'BREW', 'G\u0000T', 'get', '']
const PATHS = [
  '/healthz', '/api/echo/x', '/api/echo/a/b?x=1', '/api/echo/%2e%2e/x', '/api/echo/a%2Fb', '/api/echo/%00', '/api/%24SYS/x',
  '/api/echo/%zz', '/api/echo/%', '/api/echo/%C0%AF', '/publish', '/retained/a%2Fb', '/retained/%00', '/stats', '/mqtt',
  '/api/echo/x?timeout=abc', '/api/echo/x?timeout=0', '/api/echo/x?timeout=99999', '/api/nobody/x', '*', '//', '/api/', '/api'
]

function httpRequest (r: Rand): Buffer {
  let method = r.pick(METHODS)
  let path = r.pick(PATHS)
  let version = 'HTTP/1.1'
  const body = r.pick(['', 'hello', '{"topic":"fuzz/h","payload":"x"}', '{"topic":', r.text(r.int(100))])
  const headers: string[] = ['Host: 127.0.0.1']
  let contentLength = String(Buffer.byteLength(body))
  switch (r.int(10)) {
    case 0: method = r.text(1 + r.int(10), 'ABCXYZ \t\r\n:/'); break
    case 1: path = '/' + r.text(1 + r.int(60)); break
    case 2: path += '/' + 'a'.repeat(r.chance(0.5) ? 20_000 : 8_000); break
    case 3: headers.push(`X-Big: ${'b'.repeat(r.chance(0.5) ? 20_000 : 15_000)}`); break
    case 4: contentLength = r.pick(['abc', '-1', '99999999999999999999', String(body.length + 50), '1, 2', '']); break
    case 5: headers.push('Transfer-Encoding: chunked'); break
    case 6: version = r.pick(['HTTP/9.9', 'HTTP/1', 'HTTPS/1.1', '', 'HTTP/1.1 extra']); break
    case 7: headers.push(`X-${r.text(5, 'abc')}: ${r.text(20, 'abc\u0000\u0001\u007f\u00ff')}`); break
    case 8: headers.push('Origin: http://evil.example', 'Access-Control-Request-Method: POST'); break
    default: break
  }
  headers.push(`Content-Length: ${contentLength}`, 'Connection: close')
  const raw = Buffer.from(`${method} ${path} ${version}\r\n${headers.join('\r\n')}\r\n\r\n${body}`, 'latin1')
  return r.chance(0.15) ? raw.subarray(0, r.int(raw.length)) : raw
}

/** Sends one raw request, half-closes, and returns the status line's code (0 if none) once the gateway closes. */
async function playHttp (port: number, raw: Buffer): Promise<number> {
  return await new Promise(resolve => {
    const s = netConnect({ port, host: '127.0.0.1' })
    let head = ''
    const timer = setTimeout(() => s.destroy(), 3_000)
    s.on('data', (c: Buffer) => { if (head.length < 64) head += c.toString('latin1', 0, 64) })
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
      resolve(m === null ? 0 : Number(m[1]))
    })
    s.once('connect', () => { s.end(raw) })
  })
}

// ---------------------------------------------------------------- the gateway process

function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

function newestSource (dir: string): number {
  let newest = 0
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name)
    if (name.isDirectory()) newest = Math.max(newest, newestSource(p))
    else if (name.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs)
  }
  return newest
}

/** The gateway runs from dist/ (npm test builds first); builds once when it is missing or older than its sources. */
async function ensureBuilt (): Promise<void> {
  const stale = !existsSync(MAIN_JS) || Math.max(newestSource(join(root, 'core')), newestSource(join(root, 'gateway')), newestSource(join(root, 'broker'))) > statSync(MAIN_JS).mtimeMs
  if (!stale) return
  const tsc = startProcess(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { cwd: root })
  await tsc.waitForExit(120_000)
  if (!existsSync(MAIN_JS)) throw new Error(`could not build ${MAIN_JS}:\n${tsc.output()}`)
}

async function pool<T> (n: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const i = next++
      out[i] = await work(i)
    }
  }))
  return out
}

describe(`fuzzing a gateway process (seed ${SEED})`, () => {
  let gateway: TestProcess
  let echo: Responder
  let httpPort: number
  let mqttPort: number

  beforeAll(async () => {
    await ensureBuilt()
    httpPort = await freePort()
    mqttPort = await freePort()
    gateway = startProcess(process.execPath, [MAIN_JS], {
      env: {
        RTW_HOST: '127.0.0.1',
        RTW_HTTP_PORT: String(httpPort),
        RTW_MQTT_PORT: String(mqttPort),
        RTW_LOG_LEVEL: 'warn',
        // Let every fuzz connection reach the parser instead of the connection-rate limit.
        RTW_CONNECT_RATE: '1000000',
        RTW_REQUEST_TIMEOUT_MS: '2000',
        RTW_JWT_SECRET: undefined,
        RTW_AMQP_URL: undefined,
        RTW_CONFIG: undefined
      }
    })
    await waitFor(async () => {
      if (gateway.exited !== undefined) throw new Error(`gateway exited: ${gateway.output()}`)
      return await fetch(`http://127.0.0.1:${httpPort}/healthz`).then(r => r.ok, () => false)
    }, { timeoutMs: 20_000, what: 'the gateway process to serve' })
    echo = await startEcho(`mqtt://127.0.0.1:${mqttPort}`)
  }, 150_000)

  afterAll(async () => {
    await echo?.close()
    await gateway?.killGroup()
  })

  async function serves (): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/echo/after-fuzz`, { method: 'POST', body: 'still here' })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('still here')
    const c = await connectClient(`mqtt://127.0.0.1:${mqttPort}`)
    try {
      await subscribe(c, 'fuzz/roundtrip')
      const got = recordMessages(c)
      await c.publishAsync('fuzz/roundtrip', 'ok', { qos: 1 })
      await waitFor(() => got.length === 1, { what: 'the MQTT round trip' })
    } finally {
      await c.endAsync()
    }
  }

  it('survives 20,000 mutated MQTT packets and 2,000 mutated HTTP requests, and gives its memory back', async () => {
    // Warm up, then take the baseline.
    for (let i = 0; i < 20; i++) await serves()
    const baseline = rssOf(gateway.pid)
    const logBefore = gateway.output().length
    const started = Date.now()

    const r = new Rand(prng(SEED))
    const scripts = Array.from({ length: MQTT_CONNECTIONS }, (_, i) => connectionScript(r, i))
    await pool(MQTT_CONNECTIONS, async i => { await playMqtt(mqttPort, scripts[i] as Buffer[]) })
    const mqttMs = Date.now() - started

    const requests = Array.from({ length: HTTP_REQUESTS }, () => httpRequest(r))
    const statuses = await pool(HTTP_REQUESTS, async i => await playHttp(httpPort, requests[i] as Buffer))
    const elapsed = Date.now() - started

    const where = `seed ${SEED}; gateway output:\n${gateway.output().slice(-3000)}`
    expect(gateway.exited, where).toBeUndefined()
    // Garbage is a client error, never a gateway bug.
    expect(statuses.filter(s => s >= 500 && s !== 503 && s !== 504), where).toEqual([])
    expect(statuses.filter(s => s >= 400 && s < 500).length, where).toBeGreaterThan(HTTP_REQUESTS / 4)
    await serves()

    // Rate-limited logging: a few lines per kind of event, however many bad clients.
    const logLines = gateway.output().slice(logBefore).split('\n').filter(l => l.length > 0).length
    expect(logLines, where).toBeLessThan(300)

    // RSS comes back within 50 MB of the baseline once the garbage is collected (bounded wait).
    let rss = rssOf(gateway.pid)
    await waitFor(async () => {
      await serves()
      rss = rssOf(gateway.pid)
      return rss - baseline < 50 * 1024 * 1024
    }, { timeoutMs: 20_000, intervalMs: 500, what: `RSS within 50 MB of ${baseline >> 20} MB` }).catch(err => {
      throw new Error(`${(err as Error).message}: now ${rss >> 20} MB (${where})`)
    })
    if (process.env.RTW_FUZZ_VERBOSE === "1") console.log(gateway.output().slice(logBefore))
    console.log(`fuzz seed ${SEED}: ${MQTT_CONNECTIONS * PACKETS_PER_CONNECTION} MQTT packets in ${mqttMs} ms, ${HTTP_REQUESTS} HTTP requests in ${elapsed - mqttMs} ms; RSS ${baseline >> 20} -> ${rss >> 20} MB; ${logLines} log lines`)
    expect(elapsed).toBeLessThan(45_000)
  }, 120_000)
})
