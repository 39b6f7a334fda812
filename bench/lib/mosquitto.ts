// The reference broker: Debian's mosquitto (/usr/sbin/mosquitto, installed by
// scripts/test-all.sh), started by the bench on free ports with a config of
// its own, a TCP and a WebSocket listener, no persistence, and its other
// settings at their defaults, as `apt-get install mosquitto` ships them.
// It runs under bench/lib/watchdog.ts, so it dies with the bench.
import { execFileSync } from 'node:child_process'
import { connect } from 'node:net'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, type Child } from './children.js'
import { freePort } from './ports.js'

export const MOSQUITTO = process.env.BENCH_MOSQUITTO ?? '/usr/sbin/mosquitto'

export interface RunningMosquitto {
  host: string
  port: number
  wsUrl: string
  /** The mosquitto process itself (not its watchdog). */
  pid: number
  child: Child
  stop: () => Promise<void>
}

/** Why mosquitto cannot be run here, or undefined. */
export function mosquittoMissing (): string | undefined {
  return existsSync(MOSQUITTO) ? undefined : `${MOSQUITTO} is not installed (apt-get install -y mosquitto, or npm run test:all)`
}

export async function startMosquitto (name = 'mosquitto'): Promise<RunningMosquitto> {
  const host = '127.0.0.1'
  const port = await freePort(host)
  const wsPort = await freePort(host)
  const dir = mkdtempSync(join(tmpdir(), 'rtw-bench-mosquitto-'))
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, [
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence false',
    // As the gateway in the bench (RTW_LOG_LEVEL=warn): no line per connection.
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    `listener ${port} ${host}`,
    'protocol mqtt',
    `listener ${wsPort} ${host}`,
    'protocol websockets',
    ''
  ].join('\n'))
  const child = startNode(name, 'dist/bench/lib/watchdog.js', { args: [MOSQUITTO, '-c', conf], pipeStdin: true })
  try {
    const pid = Number((await child.waitForLine(/watchdog: pid (\d+)/))[1])
    await waitForPort(host, port, child)
    await waitForPort(host, wsPort, child)
    return {
      host,
      port,
      wsUrl: `ws://${host}:${wsPort}/mqtt`,
      pid,
      child,
      async stop () {
        await child.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await child.stop()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** "mosquitto 2.0.11", from its usage text. */
export function mosquittoVersion (): string {
  try {
    execFileSync(MOSQUITTO, ['-h'], { stdio: 'pipe' })
  } catch (err) {
    // mosquitto -h exits with 3 after printing its usage.
    const out = String((err as { stdout?: Buffer }).stdout ?? '')
    const m = /mosquitto version (\S+)/.exec(out)
    if (m !== null) return `mosquitto ${m[1] as string}`
  }
  return 'mosquitto'
}

async function waitForPort (host: string, port: number, child: Child, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited before listening on ${port}\n${child.tail()}`)
    const open = await new Promise<boolean>(resolve => {
      const s = connect(port, host, () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`${child.name} is not listening on ${port} after ${timeoutMs} ms\n${child.tail()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
