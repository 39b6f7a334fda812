// Docs are part of the product: the error table, the config table and the
// protocol clauses cited in code must all be documented.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERRORS } from '../../core/errors.js'
import { CONFIG_FIELDS, defaultText } from '../../gateway/config.js'

const root = join(import.meta.dirname, '..', '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const protocol = readFileSync(join(root, 'PROTOCOL.md'), 'utf8')
const openapi = readFileSync(join(root, 'openapi.yaml'), 'utf8')

function sourceFiles (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p))
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

describe('docs stay in sync with the code', () => {
  it.each(Object.entries(ERRORS))('README documents %s with its status', (code, { status }) => {
    const row = readme.split('\n').find(line => line.startsWith(`| \`${code}\` |`))
    expect(row, `README error table has no row for ${code}`).toBeDefined()
    expect(row).toContain(`| ${status} |`)
  })

  it('every error code is in the OpenAPI enum, and nothing else is', () => {
    const m = /enum: \[(RTW_[^\]]+)\]/.exec(openapi)
    expect(m).not.toBeNull()
    const documented = (m?.[1] ?? '').split(',').map(s => s.trim()).sort()
    expect(documented).toEqual(Object.keys(ERRORS).sort())
  })

  it('every error code has a stable, self-describing name', () => {
    for (const code of Object.keys(ERRORS)) expect(code).toMatch(/^RTW_[A-Z_]+$/)
  })

  it.each(Object.entries(CONFIG_FIELDS))('README documents config %s', (key, field) => {
    const row = readme.split('\n').find(line => line.startsWith(`| \`${key}\` |`))
    expect(row, `README config table has no row for ${key}`).toBeDefined()
    expect(row).toContain(`\`${field.env}\``)
    expect(row).toContain(`\`${field.flag}\``)
    expect(row).toContain(`| ${defaultText(field.default)} |`)
  })

  it('every protocol clause cited in code is defined in PROTOCOL.md', () => {
    const cited = new Set<string>()
    for (const dir of ['core', 'gateway', 'broker', 'echo-server', 'web-client/src']) {
      let files: string[] = []
      try { files = sourceFiles(join(root, dir)) } catch { continue }
      for (const f of files) {
        for (const m of readFileSync(f, 'utf8').matchAll(/\[(P-\d+(?:\.\d+)?)\]/g)) cited.add(m[1] as string)
      }
    }
    expect(cited.size).toBeGreaterThan(10)
    const missing = [...cited].filter(id => {
      if (/\.\d+$/.test(id)) return !protocol.includes(`**[${id}]**`)
      return !new RegExp(`^## ${id.slice(2)}\\. `, 'm').test(protocol)
    })
    expect(missing).toEqual([])
  })
})
