// The folders' dependency direction (docs/ARCHITECTURE.md, "Folders"): every
// import points down, towards core/. core/ imports no I/O and nothing outside
// core/; net/ imports only core/; broker/ imports core/ and net/; the echo
// server, a service of its own, imports core/ and net/ and no gateway code.
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..', '..')

interface Import { file: string, spec: string, typeOnly: boolean, names: string }

function importsOf (dir: string): Import[] {
  const out: Import[] = []
  for (const name of readdirSync(join(root, dir), { recursive: true }) as string[]) {
    if (!name.endsWith('.ts')) continue
    const file = join(dir, name)
    const src = readFileSync(join(root, file), 'utf8')
    for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?([^'"]*?)\s*from\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gms)) {
      const dynamic = m[4] !== undefined
      out.push({ file, spec: (m[3] ?? m[4]) as string, typeOnly: !dynamic && m[1] !== undefined, names: dynamic ? '*' : (m[2] as string).trim() })
    }
  }
  return out
}

/** The repository folder a relative import lands in ("core", "gateway", …), or undefined for a package. */
function folderOf (imp: Import): string | undefined {
  if (!imp.spec.startsWith('.')) return undefined
  return relative(root, resolve(root, dirname(imp.file), imp.spec)).split(/[\\/]/)[0]
}

/** The imports of `dir` that land in a repository folder not in `allowed`. */
function reachingOutside (dir: string, allowed: string[]): string[] {
  const imports = importsOf(dir)
  expect(imports.length).toBeGreaterThan(3)
  return imports.filter(imp => {
    const folder = folderOf(imp)
    return folder !== undefined && !allowed.includes(folder)
  }).map(b => `${b.file}: ${b.spec}`)
}

// Pure libraries and the pure parts of Node that core/ may use.
const CORE_PACKAGES = new Set(['node:buffer', 'node:crypto', '@fastify/proxy-addr'])

describe('dependency direction', () => {
  it('core/ imports only core/ and pure code', () => {
    const imports = importsOf('core')
    expect(imports.length).toBeGreaterThan(5)
    const bad = imports.filter(imp => {
      if (imp.typeOnly) return false
      const folder = folderOf(imp)
      if (folder !== undefined) return folder !== 'core'
      // isIP is a string check; nothing else of node:net.
      if (imp.spec === 'node:net') return imp.names !== '{ isIP }'
      return !CORE_PACKAGES.has(imp.spec)
    })
    expect(bad.map(b => `${b.file}: ${b.spec}`)).toEqual([])
  })

  it('net/ imports only core/ and net/', () => {
    expect(reachingOutside('net', ['core', 'net'])).toEqual([])
  })

  it('broker/ imports only core/, net/ and broker/', () => {
    expect(reachingOutside('broker', ['core', 'net', 'broker'])).toEqual([])
  })

  it('echo-server/ imports only core/, net/ and itself', () => {
    expect(reachingOutside('echo-server', ['core', 'net', 'echo-server'])).toEqual([])
  })

  it('gateway/ imports no test, bench, script or echo-server code', () => {
    expect(reachingOutside('gateway', ['core', 'net', 'broker', 'gateway'])).toEqual([])
  })

  it('sees type-only and dynamic imports too', () => {
    // The rules above would pass vacuously if the scan missed a form of import.
    const store = importsOf('net').filter(imp => imp.file.endsWith('open.ts')).map(imp => imp.spec)
    expect(store).toEqual(expect.arrayContaining(['./store.js', './redis.js', './level.js']))
  })
})
