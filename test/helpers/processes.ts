// Child processes for end-to-end tests. Each runs in its own process group
// (detached), so teardown can signal the whole group: a shell pipeline and its
// children, or pm2 and the apps it forks.
import { spawn, type ChildProcess } from 'node:child_process'
import { waitFor } from './wait.js'

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface TestProcess {
  child: ChildProcess
  pid: number
  /** Everything written to stdout and stderr so far. */
  output: () => string
  /** Waits until the output matches (bounded). */
  waitForOutput: (re: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves when the process has exited; rejects after timeoutMs. */
  waitForExit: (timeoutMs?: number) => Promise<Exit>
  /** Sends a signal to the process itself. */
  signal: (sig: NodeJS.Signals) => void
  /** Sends a signal to its whole process group, as Ctrl-C in a terminal does. */
  signalGroup: (sig: NodeJS.Signals) => void
  /** SIGKILLs the whole process group, if still alive, and waits for the exit. */
  killGroup: () => Promise<void>
  readonly exited: Exit | undefined
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  cwd?: string
}

export function startProcess (command: string, args: string[], opts: SpawnOptions = {}): TestProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  const pid = child.pid
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  let exited: Exit | undefined
  const exitPromise = new Promise<Exit>(resolve => {
    child.once('exit', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    })
  })

  const signalGroup = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig)
    } catch {
      // the group is already gone
    }
  }

  return {
    child,
    pid,
    output: () => out,
    get exited () { return exited },
    async waitForOutput (re, timeoutMs = 15_000) {
      return await waitFor(() => {
        if (exited !== undefined && out.match(re) === null) throw new Error(`process exited (${JSON.stringify(exited)}); output:\n${out}`)
        return out.match(re)
      }, { timeoutMs, what: `output ${String(re)} from ${command}` })
    },
    async waitForExit (timeoutMs = 15_000) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${command} did not exit within ${timeoutMs} ms; output:\n${out}`)), timeoutMs)
      })
      try {
        return await Promise.race([exitPromise, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    signal (sig) {
      child.kill(sig)
    },
    signalGroup,
    async killGroup () {
      signalGroup('SIGKILL')
      if (exited === undefined) await exitPromise
    }
  }
}

/** The latest value of each $SYS topic in `mosquitto_sub -v` output ("topic payload" lines). */
export function latestSys (out: string): Map<string, string> {
  const values = new Map<string, string>()
  for (const line of out.split('\n')) {
    const space = line.indexOf(' ')
    if (line.startsWith('$SYS/') && space > 0) values.set(line.slice(0, space), line.slice(space + 1))
  }
  return values
}
