// The folders' dependency direction (docs/ARCHITECTURE.md): core/ imports no
// I/O and nothing outside core/; broker/ never imports gateway/.
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
    for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?([^'"]*?)\s*from\s+'([^']+)'/gms)) {
      out.push({ file, spec: m[3] as string, typeOnly: m[1] !== undefined, names: (m[2] as string).trim() })
    }
  }
  return out
}

/** The repository folder a relative import lands in ("core", "gateway", …), or undefined for a package. */
function folderOf (imp: Import): string | undefined {
  if (!imp.spec.startsWith('.')) return undefined
  return relative(root, resolve(root, dirname(imp.file), imp.spec)).split(/[\\/]/)[0]
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

  it('broker/ never imports gateway/', () => {
    const bad = importsOf('broker').filter(imp => folderOf(imp) === 'gateway')
    expect(bad.map(b => `${b.file}: ${b.spec}`)).toEqual([])
  })
})
