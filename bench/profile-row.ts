// Runs one broker row (bench/broker-rows.ts) against a gateway started with
// --cpu-prof, and prints where its CPU went (bench/profile-top.ts reads the
// profile again). Usage: node dist/bench/profile-row.js ROW_ID [TOP]
import { readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { BROKER_ROWS } from './broker-rows.js'
import { installCleanup, stopAll } from './lib/children.js'
import { startGatewayWithEcho } from './lib/gateway.js'

const [id, top] = process.argv.slice(2)
const row = BROKER_ROWS.find(r => r.id === id)
if (row === undefined) {
  console.error(`usage: node dist/bench/profile-row.js ROW_ID [TOP]; rows: ${BROKER_ROWS.map(r => r.id).join(', ')}`)
  process.exit(2)
}
installCleanup()
const dir = `.tmp/bench-profiles/${row.id}-${Date.now()}`
const gw = await startGatewayWithEcho(`profile-${row.id}`, { gatewayEnv: row.lifted?.env, gatewayExecArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
const t = new URL(gw.mqttUrl)
const w = new URL(gw.wsUrl)
const result = await row.run({
  name: 'gateway',
  pid: gw.gateway.proc.pid as number,
  tcp: { transport: 'tcp', host: t.hostname, port: Number(t.port) },
  ws: { transport: 'ws', host: w.hostname, port: Number(w.port), path: w.pathname }
}, { start: () => {}, stop: () => {} })
console.log(`${row.name}: ${result.value.toFixed(1)} ${row.unit}${result.problems.length > 0 ? ` (${result.problems.join('; ')})` : ''}`)
await stopAll()
const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
if (file === undefined) throw new Error(`no profile in ${dir}`)
console.log(execFileSync(process.execPath, ['dist/bench/profile-top.js', `${dir}/${file}`, top ?? '25'], { encoding: 'utf8' }))
