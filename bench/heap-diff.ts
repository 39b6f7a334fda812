// What a heap grew by between two V8 heap snapshots (node --heapsnapshot-signal,
// or bench/profile-idle.ts), by constructor: count and bytes, and both per
// unit when a unit count is given (e.g. connections opened between them).
// Usage: node dist/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot [UNITS] [N]
import { readFileSync } from 'node:fs'

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

export type Census = Map<string, { count: number, bytes: number }>

/** Self size and count by "type name" (constructor for objects, "(string)" for strings, and so on). */
export function census (file: string): Census {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const width = fields.length
  const fType = fields.indexOf('type')
  const fName = fields.indexOf('name')
  const fSize = fields.indexOf('self_size')
  const out: Census = new Map()
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + fType] as number] ?? '?'
    const name = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array' || type === 'object shape'
      ? `${type} ${s.strings[s.nodes[i + fName] as number] ?? '?'}`
      : `(${type})`
    const e = out.get(name) ?? { count: 0, bytes: 0 }
    e.count++
    e.bytes += s.nodes[i + fSize] as number
    out.set(name, e)
  }
  return out
}

export function diff (before: Census, after: Census): Array<{ name: string, count: number, bytes: number }> {
  const names = new Set([...before.keys(), ...after.keys()])
  return [...names].map(name => {
    const a = before.get(name) ?? { count: 0, bytes: 0 }
    const b = after.get(name) ?? { count: 0, bytes: 0 }
    return { name, count: b.count - a.count, bytes: b.bytes - a.bytes }
  }).sort((x, y) => y.bytes - x.bytes)
}

export function printDiff (rows: ReturnType<typeof diff>, units: number, top: number): void {
  const total = rows.reduce((n, r) => n + r.bytes, 0)
  console.log(`heap growth: ${(total / 1024).toFixed(0)} KiB${units > 1 ? `, ${(total / units).toFixed(0)} B per unit over ${units}` : ''}`)
  console.log('   B/unit  objects/unit  what')
  for (const r of rows.slice(0, top)) {
    console.log(`${(r.bytes / units).toFixed(0).padStart(9)}  ${(r.count / units).toFixed(2).padStart(12)}  ${r.name.slice(0, 100)}`)
  }
}

if (process.argv[1]?.endsWith('heap-diff.js') === true) {
  const [beforeFile, afterFile, unitsArg, topArg] = process.argv.slice(2)
  if (beforeFile === undefined || afterFile === undefined) {
    console.error('usage: node dist/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot [UNITS] [N]')
    process.exit(2)
  }
  printDiff(diff(census(beforeFile), census(afterFile)), Number(unitsArg ?? 1), Number(topArg ?? 40))
}
