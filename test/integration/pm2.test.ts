// `npx pm2-runtime start ecosystem.config.js`, as `npm start` runs it: the
// gateway and the echo server come up on the ports RTW_* name, REST echo
// works, and Ctrl-C or SIGTERM stops both after they drain.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { freePort, isListening } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

interface Started { proc: TestProcess, httpUrl: string, httpPort: number, mqttPort: number }

describe('pm2-runtime with ecosystem.config.js', () => {
  const procs: TestProcess[] = []
  // A private PM2_HOME, so this run never touches a developer's own pm2 daemon.
  const pm2Home = mkdtempSync(join(tmpdir(), 'rtw-pm2-'))

  afterEach(async () => {
    for (const p of procs.splice(0)) await p.killGroup()
  })
  afterAll(() => {
    rmSync(pm2Home, { recursive: true, force: true })
  })

  async function start (command: string, args: string[]): Promise<Started> {
    const httpPort = await freePort()
    const mqttPort = await freePort()
    const proc = startProcess(command, args, {
      env: {
        PM2_HOME: pm2Home,
        RTW_HOST: '127.0.0.1',
        RTW_HTTP_PORT: String(httpPort),
        RTW_MQTT_PORT: String(mqttPort),
        RTW_SHUTDOWN_GRACE_MS: '2000'
      }
    })
    procs.push(proc)
    const httpUrl = `http://127.0.0.1:${httpPort}`
    // Up once the echo server has subscribed: until then the gateway answers 404, or nothing listens yet.
    const first = await waitFor(async () => {
      const res = await fetch(`${httpUrl}/api/echo/ready?timeout=5`, { method: 'POST', body: 'ping', headers: { 'content-type': 'text/plain' } })
      return res.status === 200 ? res : undefined
    }, { timeoutMs: 30_000, intervalMs: 100, what: 'REST echo through pm2' })
    expect(await first.text()).toBe('ping')
    return { proc, httpUrl, httpPort, mqttPort }
  }

  it('runs the gateway and the echo server on the RTW_* ports; Ctrl-C drains and stops both', async () => {
    const { proc, httpUrl, httpPort, mqttPort } = await start('npx', ['pm2-runtime', 'start', 'ecosystem.config.js'])

    const json = await fetch(`${httpUrl}/api/realtimeweb/x`, { method: 'PUT', body: '{"via":"pm2"}', headers: { 'content-type': 'application/json' } })
    expect(json.status).toBe(200)
    expect(json.headers.get('content-type')).toBe('application/json')
    expect(await json.text()).toBe('{"via":"pm2"}')

    // The MQTT port named in the environment is the gateway's.
    const client = await connectClient(`mqtt://127.0.0.1:${mqttPort}`)
    await subscribe(client, 'pm2/check')
    const got = nextMessage(client)
    const pub = await fetch(`${httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'pm2/check', payload: 'hi' }), headers: { 'content-type': 'application/json' } })
    expect(pub.status).toBe(200)
    expect((await got).payload.toString()).toBe('hi')
    await client.endAsync()

    // Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    proc.signalGroup('SIGINT')
    const exit = await proc.waitForExit(30_000)
    // npx re-raises the signal its child stopped on, as a shell expects after Ctrl-C.
    expect(exit.code === 0 || exit.signal === 'SIGINT').toBe(true)
    const out = proc.output()
    expect(out).toMatch(/SIGINT: draining/)
    expect(out).toMatch(/App \[rtw-gateway:\d+\] exited with code \[0\]/)
    expect(out).toMatch(/App \[rtw-echo:\d+\] exited with code \[0\]/)
    expect(out).toMatch(/PM2 successfully stopped/)
    expect(await isListening(httpPort)).toBe(false)
    expect(await isListening(mqttPort)).toBe(false)
  })

  it('stops both apps and exits 0 when pm2-runtime alone gets SIGTERM (docker stop, systemd)', async () => {
    const { proc, httpPort, mqttPort } = await start('node_modules/.bin/pm2-runtime', ['start', 'ecosystem.config.js'])
    proc.signal('SIGTERM')
    expect(await proc.waitForExit(30_000)).toEqual({ code: 0, signal: null })
    const out = proc.output()
    expect(out).toMatch(/: draining for up to 2000 ms/)
    expect(out).toMatch(/App \[rtw-gateway:\d+\] exited with code \[0\]/)
    expect(out).toMatch(/App \[rtw-echo:\d+\] exited with code \[0\]/)
    expect(await isListening(httpPort)).toBe(false)
    expect(await isListening(mqttPort)).toBe(false)
  })
})
