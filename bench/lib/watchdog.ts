// Runs a program that is not a node child (mosquitto) so that it never
// outlives the bench: the bench holds this process's stdin open, and when it
// closes, which the kernel does even when the bench is killed with SIGKILL,
// the program is killed too. Usage: node dist/bench/lib/watchdog.js PROGRAM ARGS...
// Prints "watchdog: pid N" for the program, so its CPU and memory can be read.
import { spawn } from 'node:child_process'

const [program, ...args] = process.argv.slice(2)
if (program === undefined) {
  console.error('usage: watchdog PROGRAM [ARGS...]')
  process.exit(2)
}
const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] })
child.once('spawn', () => console.log(`watchdog: pid ${child.pid ?? '?'}`))
child.once('error', err => {
  console.error(`watchdog: ${program}: ${err.message}`)
  process.exit(127)
})
child.once('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
const kill = (): void => { child.kill('SIGKILL') }
process.stdin.on('end', kill)
process.stdin.on('close', kill)
process.stdin.resume()
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => { child.kill('SIGTERM') })
