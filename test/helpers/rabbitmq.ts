// A real RabbitMQ for tests: Debian's rabbitmq-server started as a private node
// (its own data, log and config under a temp dir, its own epmd, free ports),
// stopped and deleted at the end. Or, with RTW_TEST_AMQP_URL set, one that is
// already running (then it cannot be restarted, and tests that need that skip).
//
// Needs the Debian package rabbitmq-server (which brings erlang-base and epmd).
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import amqp from 'amqplib'
import { freePort, isListening } from './ports.js'
import { startProcess, type TestProcess } from './processes.js'
import { waitFor } from './wait.js'

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'

export interface TestRabbit {
  url: string
  /** False for an external RabbitMQ (RTW_TEST_AMQP_URL): stop/start are not possible. */
  restartable: boolean
  /** Graceful stop (SIGTERM, as systemd does); resolves once the node has exited. */
  stop: () => Promise<void>
  /** Crash: SIGKILL the node, no shutdown at all; resolves once it is gone. */
  kill: () => Promise<void>
  /** Starts the node again on the same ports and data; resolves once it accepts AMQP. */
  start: () => Promise<void>
  close: () => Promise<void>
  output: () => string
}

/**
 * True when tests can get a RabbitMQ: an external URL, or the Debian package
 * installed. Under CI it is always true, so a missing RabbitMQ fails the suite
 * instead of quietly skipping it.
 */
export function rabbitAvailable (): boolean {
  return process.env.CI === 'true' || (process.env.RTW_TEST_AMQP_URL ?? '') !== '' || existsSync(RABBITMQ_SERVER)
}

/**
 * Runs a command under a small sh watchdog: SIGTERM to the watchdog is passed on
 * (RabbitMQ's start script turns it into a graceful stop), and when this test
 * process disappears without cleaning up (killed, or a hook timed out), the
 * watchdog stops the command within a second, so no node outlives the tests.
 */
function guarded (command: string, args: string[], orphanCleanupDir = ''): [string, string[]] {
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

async function acceptsAmqp (url: string): Promise<boolean> {
  try {
    const conn = await amqp.connect(url, { timeout: 2_000 })
    await conn.close()
    return true
  } catch {
    return false
  }
}

export async function startRabbit (): Promise<TestRabbit> {
  const external = process.env.RTW_TEST_AMQP_URL ?? ''
  if (external !== '') {
    await waitFor(() => acceptsAmqp(external), { timeoutMs: 30_000, intervalMs: 200, what: `RabbitMQ at ${external}` })
    const refuse = async (): Promise<void> => { throw new Error('an external RabbitMQ (RTW_TEST_AMQP_URL) cannot be stopped or started by tests') }
    return { url: external, restartable: false, stop: refuse, kill: refuse, start: refuse, close: async () => {}, output: () => '' }
  }
  if (!existsSync(RABBITMQ_SERVER)) {
    throw new Error(`${RABBITMQ_SERVER} not found: apt-get install -y rabbitmq-server, or set RTW_TEST_AMQP_URL`)
  }

  const dir = mkdtempSync(join(tmpdir(), 'rtw-rabbit-'))
  const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()]
  const nodeName = `rtw-test-${process.pid}-${amqpPort}@localhost`
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
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    // Erlang distribution on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}'
  }
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`

  // Our own epmd on a free port, so nothing is shared with a system RabbitMQ and nothing outlives the tests.
  const epmd = startProcess(...guarded('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1']))
  await waitFor(() => isListening(epmdPort), { timeoutMs: 10_000, what: `epmd on port ${epmdPort}` })

  let node: TestProcess | undefined
  let log = ''
  const start = async (): Promise<void> => {
    if (node !== undefined && node.exited === undefined) throw new Error('RabbitMQ is already running')
    node = startProcess(...guarded(RABBITMQ_SERVER, [], dir), { env, cwd: dir })
    const current = node
    await waitFor(async () => {
      if (current.exited !== undefined) throw new Error(`rabbitmq-server exited ${JSON.stringify(current.exited)}:\n${current.output().slice(-3000)}`)
      return await acceptsAmqp(url)
    }, { timeoutMs: 60_000, intervalMs: 100, what: `RabbitMQ on port ${amqpPort}` })
  }
  const stop = async (): Promise<void> => {
    const current = node
    if (current === undefined || current.exited !== undefined) return
    // The start script traps SIGTERM and stops the node gracefully.
    current.signal('SIGTERM')
    try {
      await current.waitForExit(30_000)
    } catch {
      await current.killGroup()
    }
    log += current.output()
  }

  const kill = async (): Promise<void> => {
    const current = node
    if (current === undefined || current.exited !== undefined) return
    await current.killGroup()
    log += current.output()
  }

  try {
    await start()
  } catch (err) {
    await node?.killGroup()
    await epmd.killGroup()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }

  return {
    url,
    restartable: true,
    stop,
    kill,
    start,
    output: () => log + (node?.output() ?? ''),
    async close () {
      await stop()
      await node?.killGroup()
      await epmd.killGroup()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const root = join(import.meta.dirname, '..', '..')
const WORKER_JS = join(root, 'dist', 'echo-server', 'amqp-worker.js')
let built = false

/** The echo AMQP worker runs from dist/ (npm test builds first); builds once when it is missing or stale. */
async function ensureWorkerBuilt (): Promise<void> {
  if (built) return
  const { statSync } = await import('node:fs')
  const src = join(root, 'echo-server', 'amqp-worker.ts')
  const fresh = existsSync(WORKER_JS) && ['gateway/amqp/worker.ts', 'gateway/amqp/connection.ts', 'echo-server/echo.ts']
    .every(f => statSync(join(root, f)).mtimeMs <= statSync(WORKER_JS).mtimeMs) && statSync(src).mtimeMs <= statSync(WORKER_JS).mtimeMs
  if (!fresh) {
    const tsc = startProcess(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { cwd: root })
    await tsc.waitForExit(120_000)
    if (!existsSync(WORKER_JS)) throw new Error(`could not build ${WORKER_JS}:\n${tsc.output()}`)
  }
  built = true
}

export interface WorkerProcessOptions {
  services: string[]
  prefetch?: number
  delayMs?: number
}

/** Starts echo-server/amqp-worker as its own process and waits until it consumes. */
export async function startEchoWorker (url: string, opts: WorkerProcessOptions): Promise<TestProcess> {
  await ensureWorkerBuilt()
  // Guarded too: a worker reconnects forever, so it must not outlive the tests.
  const worker = startProcess(...guarded(process.execPath, [WORKER_JS]), {
    env: {
      RTW_AMQP_URL: url,
      ECHO_AMQP_SERVICES: opts.services.join(','),
      ECHO_AMQP_PREFETCH: String(opts.prefetch ?? 10),
      ECHO_DELAY_MS: String(opts.delayMs ?? 0),
      ECHO_AMQP_LOG_IDS: '1',
      RTW_AMQP_RECONNECT_MAX_MS: '500'
    }
  })
  await worker.waitForOutput(/amqp-worker: consuming/, 30_000)
  return worker
}

/** Ids a worker process reported, by event ("received" or "processed"). */
export function workerIds (worker: TestProcess, kind: 'received' | 'processed'): string[] {
  const out: string[] = []
  for (const m of worker.output().matchAll(new RegExp(`^${kind} (\\S+) redelivered=(true|false)$`, 'gm'))) out.push(m[1] as string)
  return out
}
