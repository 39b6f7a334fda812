// A real RabbitMQ for tests: Debian's rabbitmq-server started as a private node
// (its own data, log and config under a temp dir, its own epmd, free ports),
// stopped and deleted at the end. Or, with RTW_TEST_AMQP_URL set, one that is
// already running (then it cannot be restarted, and tests that need that skip).
//
// The node itself is started by scripts/rabbitmq-node.ts, which `npm run bench`
// shares. Needs the Debian package rabbitmq-server (which brings erlang-base and epmd).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { RABBITMQ_SERVER, acceptsAmqp, guarded, startRabbitNode } from '../../scripts/rabbitmq-node.js'
import { startProcess, type TestProcess } from './processes.js'
import { waitFor } from './wait.js'

export { RABBITMQ_SERVER }

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
  const node = await startRabbitNode({ namePrefix: 'rtw-test' })
  return { url: node.url, restartable: true, stop: node.stop, kill: node.kill, start: node.start, close: node.close, output: node.output }
}

const root = join(import.meta.dirname, '..', '..')
const WORKER_JS = join(root, 'dist', 'echo-server', 'amqp-worker.js')
let built = false

/** The echo AMQP worker runs from dist/ (npm test builds first); builds once when it is missing or stale. */
async function ensureWorkerBuilt (): Promise<void> {
  if (built) return
  const { statSync } = await import('node:fs')
  const src = join(root, 'echo-server', 'amqp-worker.ts')
  const fresh = existsSync(WORKER_JS) && ['net/amqp/worker.ts', 'net/amqp/connection.ts', 'echo-server/echo.ts']
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
  /** More environment, e.g. RTW_WORKER_DATA_DIR or RTW_REDIS_URL for a durable dedupe store. */
  env?: Record<string, string>
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
      RTW_AMQP_RECONNECT_MAX_MS: '500',
      ...opts.env
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
