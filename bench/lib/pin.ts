// BENCH_PIN=1: the server under test gets CPU 0 to itself, and everything else
// the bench runs (its own load generator, the echo server, RabbitMQ) shares
// CPU 1, as a load test on separate machines would have it. Unpinned, the
// scheduler sometimes puts the load generator or the echo server beside the
// server under test, and the same row moves by a quarter from run to run.
import { execFileSync } from 'node:child_process'
import os from 'node:os'

export const pinning = process.env.BENCH_PIN === '1' && os.cpus().length >= 2

/** Moves every thread of a process to one CPU (taskset, util-linux); false when that is not possible. */
export function pin (pid: number | undefined, cpu: number): boolean {
  if (pid === undefined) return false
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
