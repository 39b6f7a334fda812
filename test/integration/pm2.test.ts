// `npm start` (gateway/cli/start.ts around pm2-runtime and ecosystem.config.js),
// run for real: the gateway and the echo server come up on the ports RTW_*
// name; two starts coexist without sharing a pm2 daemon or its environment; a
// start on ports in use, or with a bad config, says so and exits non-zero at
// once; Ctrl-C during traffic drains before the echo server stops, without pm2
// noise, and leaves nothing running. pm2-runtime alone still runs the file.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { freePort, isListening } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { restContract } from '../helpers/contract.js'
import { pm2Home } from '../../gateway/cli/pm2-home.js'

const ROOT = new URL('../../', import.meta.url).pathname

interface Started { proc: TestProcess, httpUrl: string, httpPort: number, mqttPort: number, home: string }

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Every pid pm2 recorded for this start: its daemon and each app. */
function pidsOf (home: string): number[] {
  const files = [join(home, 'pm2.pid'), ...(existsSync(join(home, 'pids')) ? readdirSync(join(home, 'pids')).map(f => join(home, 'pids', f)) : [])]
  return files.filter(f => existsSync(f)).map(f => Number(readFileSync(f, 'utf8').trim())).filter(p => p > 0)
}

async function echoes (httpUrl: string, query = ''): Promise<Response> {
  return await fetch(`${httpUrl}/api/echo/ready${query}`, { method: 'POST', body: 'ping', headers: { 'content-type': 'text/plain' } })
}

/**
 * `npm start` as a person runs it (the build is already done, so its prestart
 * is skipped), or the launcher itself when `direct` (so its pid is the launcher's).
 */
async function npmStart (env: Record<string, string> = {}, direct = false): Promise<Started> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const [command, args] = direct ? [process.execPath, ['dist/gateway/cli/start.js']] : ['npm', ['start', '--ignore-scripts']]
  const proc = startProcess(command, args, {
    env: { RTW_HOST: '127.0.0.1', RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_SHUTDOWN_GRACE_MS: '5000', ...env }
  })
  const httpUrl = `http://127.0.0.1:${httpPort}`
  const home = pm2Home(ROOT, { host: '127.0.0.1', httpPort })
  try {
    await proc.waitForOutput(/pm2 home/, 20_000)
    // Up once the echo server has subscribed: until then the gateway answers 404, or nothing listens yet.
    const up = await waitFor(async () => proc.exited !== undefined ? 'exited' : (await echoes(httpUrl)).status === 200 ? 'up' : undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'REST echo through npm start' })
    if (up === 'exited') throw new Error(`npm start exited: ${JSON.stringify(proc.exited)}`)
  } catch (err) {
    await stopAll({ proc, httpUrl, httpPort, mqttPort, home })
    throw new Error(`${(err as Error).message}\nnpm start output:\n${proc.output()}`)
  }
  return { proc, httpUrl, httpPort, mqttPort, home }
}

/** Teardown: Ctrl-C if still running, and SIGKILL for anything of this start still alive after it. */
async function stopAll (s: Started | undefined): Promise<void> {
  if (s === undefined) return
  const pids = pidsOf(s.home)
  if (s.proc.exited === undefined) {
    s.proc.signalGroup('SIGINT')
    await s.proc.waitForExit(30_000).catch(async () => { await s.proc.killGroup() })
  }
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL')
  rmSync(s.home, { recursive: true, force: true })
}

/** Ctrl-C: the terminal sends SIGINT to the whole foreground process group. */
async function ctrlC (s: Started): Promise<void> {
  const pids = pidsOf(s.home)
  expect(pids.length).toBeGreaterThanOrEqual(3)
  s.proc.signalGroup('SIGINT')
  const exit = await s.proc.waitForExit(30_000)
  // npm re-raises the signal its child stopped on, as a shell expects after Ctrl-C.
  expect(exit.code === 0 || exit.signal === 'SIGINT', JSON.stringify(exit)).toBe(true)
  expect(await isListening(s.httpPort)).toBe(false)
  expect(await isListening(s.mqttPort)).toBe(false)
  await waitFor(() => pids.every(p => !alive(p)), { timeoutMs: 10_000, what: `every process of the start to be gone (${pids.join(', ')})` })
}

describe('npm start', () => {
  let a: Started
  beforeAll(async () => {
    a = await npmStart({ RTW_MAX_TIMEOUT_MS: '20000' })
  })
  afterAll(async () => { await stopAll(a) })

  // The same contract the in-process gateway passes, against the pm2-run pair.
  restContract(() => ({ httpUrl: a.httpUrl, httpPort: a.httpPort, mqttUrl: `mqtt://127.0.0.1:${a.mqttPort}` }))

  it('serves MQTT on RTW_MQTT_PORT: POST /publish reaches a subscriber there', async () => {
    const client = await connectClient(`mqtt://127.0.0.1:${a.mqttPort}`)
    try {
      await subscribe(client, 'pm2/check')
      const got = nextMessage(client)
      const pub = await fetch(`${a.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'pm2/check', payload: 'hi' }), headers: { 'content-type': 'application/json' } })
      expect(pub.status).toBe(200)
      expect((await got).payload.toString()).toBe('hi')
    } finally {
      await client.endAsync()
    }
  })

  it('runs a second start on other ports beside the first, with its own daemon and environment', async () => {
    const b = await npmStart()
    try {
      expect(b.home).not.toBe(a.home)
      // a was started with RTW_MAX_TIMEOUT_MS=20000; b must not have inherited it.
      expect((await echoes(a.httpUrl, '?timeout=25')).status).toBe(400)
      expect((await echoes(b.httpUrl, '?timeout=25')).status).toBe(200)
      await ctrlC(b)
      // Stopping b left a alone.
      expect((await echoes(a.httpUrl)).status).toBe(200)
    } finally {
      await stopAll(b)
    }
  })

  it('refuses a second start on ports in use, says so, exits non-zero, and leaves the first serving', async () => {
    const sameHttp = startProcess('npm', ['start', '--ignore-scripts'], { env: { RTW_HTTP_PORT: String(a.httpPort), RTW_MQTT_PORT: String(await freePort()) } })
    const exitHttp = await sameHttp.waitForExit(20_000)
    expect(exitHttp.code).not.toBe(0)
    expect(sameHttp.output()).toMatch(/RTW_ALREADY_RUNNING|RTW_PORT_IN_USE/)

    const sameMqtt = startProcess('npm', ['start', '--ignore-scripts'], { env: { RTW_HTTP_PORT: String(await freePort()), RTW_MQTT_PORT: String(a.mqttPort) } })
    const exitMqtt = await sameMqtt.waitForExit(20_000)
    expect(exitMqtt.code).not.toBe(0)
    expect(sameMqtt.output()).toContain(`RTW_PORT_IN_USE: the MQTT port 127.0.0.1:${a.mqttPort} is in use`)

    expect((await echoes(a.httpUrl)).status).toBe(200)
  })

  it('stops at once on a config error, with the message, instead of restarting into it', async () => {
    const bad = startProcess('npm', ['start', '--ignore-scripts'], { env: { RTW_HTTP_PORT: 'abc' } })
    const exit = await bad.waitForExit(20_000)
    expect(exit.code).not.toBe(0)
    expect(bad.output()).toContain('RTW_CONFIG_INVALID: environment RTW_HTTP_PORT: httpPort must be a whole number (got "abc")')
    expect(bad.output()).not.toMatch(/pm2|echo-server/i)
  })

  it('--print-config prints the effective config with sources instead of starting', async () => {
    const p = startProcess('npm', ['start', '--ignore-scripts', '--', '--print-config', '--body-limit', '777'], { env: { RTW_JWT_SECRET: 'not-to-be-printed' } })
    expect(await p.waitForExit(20_000)).toEqual({ code: 0, signal: null })
    expect(p.output()).toMatch(/^bodyLimit +777 +flag --body-limit$/m)
    expect(p.output()).toMatch(/^jwtSecret +\(redacted\) +env RTW_JWT_SECRET$/m)
    expect(p.output()).not.toContain('not-to-be-printed')
  })
})

describe('Ctrl-C on npm start during traffic', () => {
  it('answers the calls in flight (the echo server stops after the gateway drained), prints no pm2 kill noise, and leaves nothing running', async () => {
    // Each echo reply takes 1 s, so every call below is still waiting when Ctrl-C comes.
    const s = await npmStart({ ECHO_DELAY_MS: '1000' })
    try {
      const calls = Array.from({ length: 20 }, () => echoes(s.httpUrl).then(async r => ({ status: r.status, body: await r.text() })))
      await waitFor(async () => {
        const m = await (await fetch(`${s.httpUrl}/stats`)).json() as { inFlight: number }
        return m.inFlight === 20
      }, { what: 'all 20 calls in flight' })
      await ctrlC(s)
      const results = await Promise.all(calls)
      expect(results).toEqual(Array.from({ length: 20 }, () => ({ status: 200, body: 'ping' })))
      const out = s.proc.output()
      expect(out).toMatch(/SIGINT: draining/)
      expect(out).toMatch(/App \[rtw-gateway:\d+\] exited with code \[0\]/)
      expect(out).toMatch(/App \[rtw-echo:\d+\] exited with code \[0\]/)
      // The gateway was gone before pm2 stopped the echo server.
      expect(out.indexOf('App [rtw-gateway')).toBeLessThan(out.indexOf('Stopping app:rtw-echo'))
      expect(out).not.toMatch(/failed to kill/)
    } finally {
      await stopAll(s)
    }
  })

  it('stops everything when the start process itself is killed with SIGKILL', async () => {
    const s = await npmStart({}, true)
    try {
      const pids = pidsOf(s.home)
      expect(pids.length).toBeGreaterThanOrEqual(3)
      s.proc.signal('SIGKILL')
      await s.proc.waitForExit(10_000)
      await waitFor(() => pids.every(p => !alive(p)), { timeoutMs: 30_000, what: `pm2-runtime and its apps to stop (${pids.join(', ')})` })
      expect(await isListening(s.httpPort)).toBe(false)
      expect(await isListening(s.mqttPort)).toBe(false)
    } finally {
      await stopAll(s)
    }
  })
})

describe('pm2-runtime with ecosystem.config.js, without npm start', () => {
  // A private PM2_HOME, so this run never touches a developer's own pm2 daemon.
  const pm2Dir = mkdtempSync(join(tmpdir(), 'rtw-pm2-'))
  afterAll(() => { rmSync(pm2Dir, { recursive: true, force: true }) })

  it('stops both apps and exits 0 when pm2-runtime gets SIGTERM (docker stop, systemd)', async () => {
    const httpPort = await freePort()
    const mqttPort = await freePort()
    const proc = startProcess('node_modules/.bin/pm2-runtime', ['start', 'ecosystem.config.js'], {
      env: { PM2_HOME: pm2Dir, RTW_HOST: '127.0.0.1', RTW_HTTP_PORT: String(httpPort), RTW_MQTT_PORT: String(mqttPort), RTW_SHUTDOWN_GRACE_MS: '2000' }
    })
    try {
      await waitFor(async () => (await echoes(`http://127.0.0.1:${httpPort}`)).status === 200, { timeoutMs: 30_000, intervalMs: 100, what: 'REST echo through pm2-runtime' })
      proc.signal('SIGTERM')
      expect(await proc.waitForExit(30_000)).toEqual({ code: 0, signal: null })
      const out = proc.output()
      expect(out).toMatch(/: draining for up to 2000 ms/)
      expect(out).toMatch(/App \[rtw-gateway:\d+\] exited with code \[0\]/)
      expect(out).toMatch(/App \[rtw-echo:\d+\] exited with code \[0\]/)
      expect(await isListening(httpPort)).toBe(false)
      expect(await isListening(mqttPort)).toBe(false)
    } finally {
      await proc.killGroup()
    }
  })
})
