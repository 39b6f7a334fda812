// pm2-runtime, run in this process by `npm start` (start.ts), with one addition:
// when the start process is gone, even killed with SIGKILL, the pipe it holds
// on our stdin closes, and we stop pm2-runtime as SIGTERM would (apps stopped,
// daemon killed), so a dead start never leaves a gateway behind.
//   node runtime-guard.js <pm2-runtime path> start ecosystem.config.js
import { createRequire } from 'node:module'

const runtime = process.argv[2]
if (runtime === undefined) throw new Error('usage: runtime-guard.js <pm2-runtime> [arguments…]')
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'))
process.stdin.resume()
// pm2-runtime reads its arguments from process.argv as if it had been started itself.
process.argv.splice(1, 2, runtime)
createRequire(import.meta.url)(runtime)
