// Prints the top self-time functions, and self time by package, of a V8
// .cpuprofile (node --cpu-prof). Usage: node dist/bench/profile-top.js FILE [N]
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: node dist/bench/profile-top.js FILE.cpuprofile [N]')
  process.exit(2)
}
const top = Number(topArg ?? 30)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map(n => [n.id, n]))
const selfUs = new Map<number, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i] as number
  const dt = profile.timeDeltas[i] ?? 0
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
  total += dt
}

/** node_modules/<pkg>, node:internal, or the project's own file. */
function owner (url: string): string {
  if (url === '') return '(native/vm)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 13).split('/')
    return (rest[0] as string).startsWith('@') ? `${rest[0] as string}/${rest[1] as string}` : rest[0] as string
  }
  if (url.startsWith('node:')) return 'node core'
  const dist = url.indexOf('/dist/')
  return dist === -1 ? url : url.slice(dist + 6)
}

const byFunction = new Map<string, number>()
const byOwner = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)
  if (node === undefined) continue
  const f = node.callFrame
  const where = f.url === '' ? '' : ` ${owner(f.url)}${f.url.includes('node_modules') || f.url.startsWith('node:') ? ':' + f.url.split('/').pop() : ''}:${f.lineNumber + 1}`
  const key = `${f.functionName || '(anonymous)'}${where}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  const o = owner(f.url)
  byOwner.set(o, (byOwner.get(o) ?? 0) + us)
}

const pct = (us: number): string => (100 * us / total).toFixed(1).padStart(5) + '%'
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n\nself time by package/file:`)
for (const [o, us] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(us)}  ${o}`)
console.log(`\ntop ${top} functions by self time:`)
for (const [k, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${k}`)

// Inclusive time: a sample counts once for every package on its stack, which
// shows what a package's calls cost in all (node core and GC work they cause
// shows up under them), not just its own lines.
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const inclusive = new Map<string, number>()
for (const [id, us] of selfUs) {
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const url = byId.get(cur)?.callFrame.url ?? ''
    if (url !== '' && !url.startsWith('node:')) seen.add(owner(url))
  }
  for (const o of seen) inclusive.set(o, (inclusive.get(o) ?? 0) + us)
}
console.log('\ninclusive time by package/file (a sample counts for each one on its stack):')
for (const [o, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(us)}  ${o}`)

const inclusiveFn = new Map<string, number>()
for (const [id, us] of selfUs) {
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const f = byId.get(cur)?.callFrame
    if (f === undefined || f.url === '') continue
    seen.add(`${f.functionName || '(anonymous)'} ${owner(f.url)}:${f.lineNumber + 1}`)
  }
  for (const k of seen) inclusiveFn.set(k, (inclusiveFn.get(k) ?? 0) + us)
}
console.log(`\ntop ${top} functions by inclusive time:`)
for (const [k, us] of [...inclusiveFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${k}`)
