// A private RabbitMQ node: Debian's rabbitmq-server started with its own data,
// log and config under a temp dir, its own epmd, on free ports, and deleted at
// the end. Used by the tests (test/helpers/rabbitmq.ts) and by `npm run bench`
// (the gateway-queued row), so it lives outside test/, which the build skips.
//
// Needs the Debian package rabbitmq-server (which brings erlang-base and epmd).
// Every process runs in its own process group under a small sh watchdog that
// stops it within a second of the starting process disappearing (docs/AMQP.md, Tests).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import amqp from 'amqplib'

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'

/** True when a private node can be started here: the Debian package is installed. */
export function rabbitInstalled (): boolean {
  return existsSync(RABBITMQ_SERVER)
}

/**
 * Runs a command under a small sh watchdog: SIGTERM to the watchdog is passed on
 * (RabbitMQ's start script turns it into a graceful stop), and when this
 * process disappears without cleaning up (killed, or a hook timed out), the
 * watchdog stops the command within a second, so nothing outlives it.
 */
export function guarded (command: string, args: string[], orphanCleanupDir = ''): [string, string[]] {
  const script = [
    'parent=$1; shift',
    '"$@" & child=$!',
    'trap \'kill -TERM $child 2>/dev/null; wait $child; exit 0\' TERM INT',
    'while kill -0 $parent 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1 & wait $!; done',
    'kill -TERM $child 2>/dev/null; wait $child',
    // Only when orphaned: a normal stop keeps the data for a restart, and close() deletes it.
    'if ! kill -0 $parent 2>/dev/null && [ -n "$cleanup" ]; then rm -rf "$cleanup"; fi'
  ].join('\n')
  return ['sh', ['-c', `cleanup='${orphanCleanupDir}'\n` + script, 'rtw-guard', String(process.pid), command, ...args]]
}

/** True when RabbitMQ at url accepts an AMQP connection within timeoutMs. */
export async function acceptsAmqp (url: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const conn = await amqp.connect(url, { timeout: timeoutMs })
    await conn.close()
    return true
  } catch {
    return false
  }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      server.close(() => resolve(port))
    })
  })
}

async function isListening (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** Polls until probe is true; throws at the deadline, or at once when probe throws. */
async function until (what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await probe()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** A process in its own process group (detached), so a stop reaches the whole tree. */
interface GroupProcess {
  readonly pid: number
  readonly exited: boolean
  output: () => string
  signal: (sig: NodeJS.Signals) => void
  /** Resolves true once exited, false after timeoutMs. */
  waitForExit: (timeoutMs: number) => Promise<boolean>
  /** SIGKILLs the whole group and waits for the exit. */
  killGroup: () => Promise<void>
  /** SIGKILLs the whole group without waiting: for a process 'exit' handler. */
  killGroupSync: () => void
}

function startGroup (command: string, args: string[], env: Record<string, string> = {}, cwd?: string): GroupProcess {
  const child = spawn(command, args, { cwd: cwd ?? process.cwd(), env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  const pid = child.pid
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  let exited = false
  const exit = new Promise<void>(resolve => child.once('exit', () => { exited = true; resolve() }))
  const killGroupSync = (): void => {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // the group is already gone
    }
  }
  return {
    pid,
    get exited () { return exited },
    output: () => out,
    signal: sig => { child.kill(sig) },
    async waitForExit (timeoutMs) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
      try {
        return await Promise.race([exit.then(() => true), timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    async killGroup () {
      killGroupSync()
      if (!exited) await exit
    },
    killGroupSync
  }
}

export interface RabbitNode {
  /** amqp://guest:guest@127.0.0.1:<port> */
  url: string
  /** The node's temp dir: data, logs, config. Deleted by close(). */
  dir: string
  /** OS pid of the node's Erlang VM while it runs (RabbitMQ's pid file), for CPU accounting. */
  vmPid: () => number | undefined
  /** Graceful stop (SIGTERM, as systemd does); resolves once the node has exited. */
  stop: () => Promise<void>
  /** Crash: SIGKILL the node, no shutdown at all; resolves once it is gone. */
  kill: () => Promise<void>
  /** Starts the node again on the same ports and data; resolves once it accepts AMQP. */
  start: () => Promise<void>
  /** Stops the node and its epmd, and deletes the temp dir. */
  close: () => Promise<void>
  /** Last resort for a process 'exit' handler: SIGKILLs the node and epmd, deletes the temp dir. */
  closeSync: () => void
  output: () => string
}

export interface RabbitNodeOptions {
  /** The node is named <prefix>-<pid>-<amqp port>@localhost (default "rtw"). */
  namePrefix?: string
  /** Longest wait for the node to accept AMQP after a (re)start (default 60 s). */
  bootTimeoutMs?: number
}

export async function startRabbitNode (opts: RabbitNodeOptions = {}): Promise<RabbitNode> {
  if (!rabbitInstalled()) {
    throw new Error(`${RABBITMQ_SERVER} not found: apt-get install -y rabbitmq-server`)
  }
  const bootTimeoutMs = opts.bootTimeoutMs ?? 60_000
  const dir = mkdtempSync(join(tmpdir(), 'rtw-rabbit-'))
  const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()]
  const nodeName = `${opts.namePrefix ?? 'rtw'}-${process.pid}-${amqpPort}@localhost`
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n')
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '')
  writeFileSync(join(dir, 'rabbitmq.conf'), [
    'log.console = false',
    'log.file.level = warning',
    // Small CI disks: only stop accepting publishes when nearly full.
    'disk_free_limit.absolute = 50MB',
    'loopback_users.guest = true',
    ''
  ].join('\n'))

  const pidFile = join(dir, 'rabbitmq.pid')
  const env = {
    HOME: dir, // the Erlang cookie lives here
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: pidFile,
    // Erlang distribution on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}'
  }
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`

  // Our own epmd on a free port, so nothing is shared with a system RabbitMQ and nothing outlives us.
  const epmd = startGroup(...guarded('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1']))
  let node: GroupProcess | undefined
  let log = ''
  const closeSync = (): void => {
    node?.killGroupSync()
    epmd.killGroupSync()
    rmSync(dir, { recursive: true, force: true })
  }

  const start = async (): Promise<void> => {
    if (node !== undefined && !node.exited) throw new Error('RabbitMQ is already running')
    if (node !== undefined) log += node.output()
    node = startGroup(...guarded(RABBITMQ_SERVER, [], dir), env, dir)
    const current = node
    await until(`RabbitMQ on port ${amqpPort}`, bootTimeoutMs, 100, async () => {
      if (current.exited) throw new Error(`rabbitmq-server exited during start-up:\n${current.output().slice(-3000)}`)
      return await acceptsAmqp(url)
    })
  }
  const stop = async (): Promise<void> => {
    const current = node
    if (current === undefined || current.exited) return
    // The start script traps SIGTERM and stops the node gracefully.
    current.signal('SIGTERM')
    if (!await current.waitForExit(30_000)) await current.killGroup()
  }
  const kill = async (): Promise<void> => {
    const current = node
    if (current === undefined || current.exited) return
    await current.killGroup()
  }

  try {
    await until(`epmd on port ${epmdPort}`, 10_000, 20, async () => await isListening(epmdPort))
    await start()
  } catch (err) {
    await node?.killGroup()
    await epmd.killGroup()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }

  return {
    url,
    dir,
    vmPid () {
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').trim())
        return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
      } catch {
        return undefined
      }
    },
    stop,
    kill,
    start,
    output: () => log + (node?.output() ?? ''),
    async close () {
      await stop()
      await node?.killGroup()
      await epmd.killGroup()
      rmSync(dir, { recursive: true, force: true })
    },
    closeSync
  }
}
