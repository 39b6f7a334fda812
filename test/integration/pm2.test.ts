// `npx pm2-runtime start ecosystem.config.js`, as `npm start` runs it: the
// gateway and the echo server come up on the ports RTW_* name, REST echo
// works, and Ctrl-C or SIGTERM stops both after they drain.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectClient, nextMessage, subscribe } from '../helpers/mqtt.js'
import { freePort, isListening } from '../helpers/ports.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { restContract } from '../helpers/contract.js'

interface Started { proc: TestProcess, httpUrl: string, httpPort: number, mqttPort: number }

describe('pm2-runtime with ecosystem.config.js', () => {
  // A private PM2_HOME, so this run never touches a developer's own pm2 daemon.
  const pm2Home = mkdtempSync(join(tmpdir(), 'rtw-pm2-'))

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
    const httpUrl = `http://127.0.0.1:${httpPort}`
    try {
      // Up once the echo server has subscribed: until then the gateway answers 404, or nothing listens yet.
      const first = await waitFor(async () => {
        const res = await fetch(`${httpUrl}/api/echo/ready?timeout=5`, { method: 'POST', body: 'ping', headers: { 'content-type': 'text/plain' } })
        return res.status === 200 ? res : undefined
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'REST echo through pm2' })
      expect(await first.text()).toBe('ping')
    } catch (err) {
      await proc.killGroup()
      throw new Error(`${(err as Error).message}\npm2 output:\n${proc.output()}`)
    }
    return { proc, httpUrl, httpPort, mqttPort }
  }

  describe('started with npx pm2-runtime, as npm start does', () => {
    let started: Started

    beforeAll(async () => {
      started = await start('npx', ['pm2-runtime', 'start', 'ecosystem.config.js'])
    })
    afterAll(async () => {
      await started?.proc.killGroup()
    })

    // The same contract the in-process gateway passes, against the pm2-run pair.
    restContract(() => ({ httpUrl: started.httpUrl, httpPort: started.httpPort, mqttUrl: `mqtt://127.0.0.1:${started.mqttPort}` }))

    it('serves MQTT on RTW_MQTT_PORT: POST /publish reaches a subscriber there', async () => {
      const client = await connectClient(`mqtt://127.0.0.1:${started.mqttPort}`)
      try {
        await subscribe(client, 'pm2/check')
        const got = nextMessage(client)
        const pub = await fetch(`${started.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'pm2/check', payload: 'hi' }), headers: { 'content-type': 'application/json' } })
        expect(pub.status).toBe(200)
        expect((await got).payload.toString()).toBe('hi')
      } finally {
        await client.endAsync()
      }
    })

    it('drains and stops both apps on Ctrl-C', async () => {
      const { proc, httpPort, mqttPort } = started
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
  })

  it('stops both apps and exits 0 when pm2-runtime alone gets SIGTERM (docker stop, systemd)', async () => {
    const { proc, httpPort, mqttPort } = await start('node_modules/.bin/pm2-runtime', ['start', 'ecosystem.config.js'])
    try {
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
