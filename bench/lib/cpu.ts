// Where the machine's CPU went during a measurement: each server process, the
// load generator (this process), and everything else. On a shared 2-core
// machine "other" says whether a figure was disturbed. Linux /proc only; other
// systems get "?".
import { readFileSync } from 'node:fs'

const TICKS_PER_S = 100

/** CPU seconds (user + system) a process has used so far. */
function processSeconds (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
  } catch {
    return undefined
  }
}

/** Busy CPU seconds of the whole machine so far: all but idle and iowait. */
function machineSeconds (): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string
    const f = line.split(/\s+/).slice(1).map(Number)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
    return (total - (f[3] ?? 0) - (f[4] ?? 0)) / TICKS_PER_S
  } catch {
    return undefined
  }
}

export interface Measured { name: string, pid: number | undefined }

export interface CpuShares {
  /** Cores used, by process name, plus "load" (this process) and "other". */
  shares: Array<[string, number | undefined]>
}

export function startCpuMeter (processes: Measured[]): () => CpuShares {
  const before = processes.map(p => processSeconds(p.pid))
  const machineBefore = machineSeconds()
  const ownBefore = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  return () => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const own = process.cpuUsage(ownBefore)
    const ownS = (own.user + own.system) / 1e6
    const shares: Array<[string, number | undefined]> = processes.map((p, i) => {
      const a = before[i]
      const b = processSeconds(p.pid)
      return [p.name, a === undefined || b === undefined ? undefined : (b - a) / wall]
    })
    shares.push(['load', ownS / wall])
    const machineAfter = machineSeconds()
    if (machineBefore !== undefined && machineAfter !== undefined && shares.every(s => s[1] !== undefined)) {
      const ours = shares.reduce((sum, s) => sum + (s[1] as number), 0)
      shares.push(['other', Math.max(0, (machineAfter - machineBefore) / wall - ours)])
    } else {
      shares.push(['other', undefined])
    }
    return { shares }
  }
}

export function formatShares (c: CpuShares): string {
  return c.shares.map(([name, v]) => `${name} ${v === undefined ? '?' : v.toFixed(2)}`).join(', ')
}
