// Where the bytes of idle connections go: starts a gateway, opens 200
// connections, takes a heap snapshot, opens COUNT more, lets it settle, takes
// another, and prints the heap growth by constructor per connection beside the
// RSS growth (the rest is outside V8's heap: sockets, buffers, native handles).
// Usage: node dist/bench/profile-idle.js tcp|ws [COUNT]   (snapshots in .tmp/bench-profiles)
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { installCleanup, stopAll } from './lib/children.js'
import { startGatewayWithEcho } from './lib/gateway.js'
import { openMany, rssBytes, settledRss } from './lib/broker-load.js'
import type { Endpoint } from './lib/load-client.js'
import { census, diff, printDiff } from './heap-diff.js'

const transport = process.argv[2] === 'ws' ? 'ws' : 'tcp'
const count = Number(process.argv[3] ?? 5000)
const dir = '.tmp/bench-profiles'
mkdirSync(dir, { recursive: true })
installCleanup()

const gw = await startGatewayWithEcho('profile-idle', {
  gatewayEnv: { RTW_CONNECT_RATE: '1000000000' },
  gatewayExecArgv: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`, ...(process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')]
})
const pid = gw.gateway.proc.pid as number
const url = new URL(transport === 'ws' ? gw.wsUrl : gw.mqttUrl)
const ep: Endpoint = { transport, host: url.hostname, port: Number(url.port), path: url.pathname }

async function snapshot (): Promise<string> {
  const mine = (): string[] => readdirSync(dir).filter(f => f.includes(`.${pid}.`) && f.endsWith('.heapsnapshot'))
  const known = new Set(mine())
  process.kill(pid, 'SIGUSR2')
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, 500))
    const file = mine().find(f => !known.has(f))
    if (file === undefined) continue
    const path = join(dir, file)
    const size = statSync(path).size
    await new Promise(resolve => setTimeout(resolve, 1000))
    if (statSync(path).size === size && size > 0) return path
  }
}

const problems: string[] = []
const warm = await openMany(ep, 200, 50, 'warm', problems)
const rss0 = await settledRss(pid)
const before = await snapshot()
const rss0b = rssBytes(pid)
const idle = await openMany(ep, count, 50, 'idle', problems)
const rss1 = await settledRss(pid)
const after = await snapshot()
console.log(`${transport}: ${idle.length} idle connections; RSS growth ${((rss1 - rss0) / idle.length / 1024).toFixed(1)} KiB per connection ` +
  `(RSS ${(rss0 / 1048576).toFixed(1)} → ${(rss1 / 1048576).toFixed(1)} MiB; ${(rss0b / 1048576).toFixed(1)} after the first snapshot)`)
if (problems.length > 0) console.log(problems.join('; '))
printDiff(diff(census(before), census(after)), idle.length, Number(process.env.TOP ?? 45))
for (const c of [...warm, ...idle]) c.destroy()
await stopAll()
