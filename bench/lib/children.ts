// Child processes the bench starts: the servers under test run each in its own
// process so each gets a core. Every child, and every resource tracked with
// track(), is stopped when the bench exits, fails or is interrupted.
import { spawn, type ChildProcess } from 'node:child_process'

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  /** Resolves with the first output line that matches, or rejects after timeoutMs or on exit. */
  waitForLine: (re: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>
  /** The last lines of output, for error messages. */
  tail: () => string
  stop: () => Promise<void>
}

export interface StartOptions {
  env?: Record<string, string>
  execArgv?: string[]
  /** Arguments after the script. */
  args?: string[]
  /** Keep a pipe to the child's stdin open for as long as the bench runs (bench/lib/watchdog.ts). */
  pipeStdin?: boolean
  /** stopAll stops it after the other children: a worker that must answer what a draining gateway waits for. */
  stopLate?: boolean
}

const live = new Set<Child>()
const late = new WeakSet<Child>()
const verbose = process.env.BENCH_VERBOSE === '1'

export function startNode (name: string, script: string, opts: StartOptions = {}): Child {
  const proc = spawn(process.execPath, [...(opts.execArgv ?? []), script, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: [opts.pipeStdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const watchers = new Set<(line: string) => void>()
  let exited: string | undefined
  const onData = (data: Buffer): void => {
    for (const line of data.toString('utf8').split('\n')) {
      if (line.length === 0) continue
      if (verbose) console.error(`[${name}] ${line}`)
      lines.push(line)
      if (lines.length > 40) lines.shift()
      for (const w of watchers) w(line)
    }
  }
  proc.stdout?.on('data', onData)
  proc.stderr?.on('data', onData)
  const exit = new Promise<void>(resolve => {
    proc.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`
      if (verbose) console.error(`[${name}] ${exited}`)
      live.delete(child)
      resolve()
    })
  })
  proc.once('error', err => { exited = `failed to start: ${err.message}` })

  const child: Child = {
    name,
    proc,
    tail: () => lines.join('\n'),
    waitForLine (re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer)
          clearInterval(poll)
          watchers.delete(watch)
        }
        const watch = (line: string): void => {
          const m = re.exec(line)
          if (m !== null) { done(); resolve(m) }
        }
        const fail = (why: string): void => {
          done()
          reject(new Error(`${name}: ${why} while waiting for ${String(re)}\n${child.tail()}`))
        }
        const timer = setTimeout(() => fail(`no match in ${timeoutMs} ms`), timeoutMs)
        const poll = setInterval(() => { if (exited !== undefined) fail(exited) }, 50)
        for (const line of lines) {
          const m = re.exec(line)
          if (m !== null) { done(); resolve(m); return }
        }
        watchers.add(watch)
      })
    },
    async stop () {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      // A gateway drains (up to its 10 s grace) and a profiled one writes its
      // profile before it exits; give it that long, then insist.
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(killer)
    }
  }
  live.add(child)
  if (opts.stopLate === true) late.add(child)
  return child
}

/** Something besides a node child that the bench started and must stop, e.g. a private RabbitMQ node. */
export interface Resource {
  readonly name: string
  stop: () => Promise<void>
  /** Synchronous last resort, from the process 'exit' handler. */
  stopSync: () => void
}

const resources = new Set<Resource>()

/** Stops the resource with the children (after them: they may depend on it); returns a stop that also forgets it. */
export function track (resource: Resource): () => Promise<void> {
  resources.add(resource)
  return async () => {
    if (!resources.delete(resource)) return
    await resource.stop()
  }
}

export async function stopAll (): Promise<void> {
  await Promise.all([...live].filter(c => !late.has(c)).map(async c => c.stop()))
  await Promise.all([...live].map(async c => c.stop()))
  const left = [...resources]
  resources.clear()
  await Promise.all(left.map(async r => r.stop()))
}

/** Stops every child on exit, on Ctrl-C/SIGTERM and on an uncaught error. */
export function installCleanup (): void {
  process.once('exit', () => {
    for (const c of live) c.proc.kill('SIGKILL')
    for (const r of resources) r.stopSync()
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping children`)
      stopAll().finally(() => process.exit(130))
    })
  }
  const fatal = (err: unknown): void => {
    console.error('bench: failed:', err)
    stopAll().finally(() => process.exit(1))
  }
  process.once('uncaughtException', fatal)
  process.once('unhandledRejection', fatal)
}
