// The Dockerfile and compose.yaml cannot be run here (no Docker engine on the
// development machine); this checks what can be checked without one: every
// file they copy or run exists (after the build), and the image runs the same
// launcher as `npm start`.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

describe('Dockerfile and compose.yaml', () => {
  it('copies only files that exist in the checkout or in the build stage', () => {
    const copies = dockerfile.split('\n').filter(l => l.startsWith('COPY ') && !l.includes('--from=')).map(l => l.slice(5).trim().split(/\s+/).slice(0, -1))
    expect(copies.length).toBeGreaterThan(3)
    for (const sources of copies) for (const s of sources) if (s !== '.') expect(existsSync(join(ROOT, s)), s).toBe(true)
    for (const line of dockerfile.split('\n').filter(l => l.startsWith('COPY --from=build'))) {
      const from = (line.split(/\s+/)[2] ?? '').replace(/^\/app\//, '')
      expect(['dist', 'web-client/dist']).toContain(from)
    }
  })

  it('is multi-stage, installs production dependencies only, runs as a non-root user, and starts like npm start', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBe(2)
    expect(dockerfile).toContain('npm ci --omit=dev')
    expect(dockerfile).toMatch(/^USER node$/m)
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const cmd = /^CMD \["node", "([^"]+)"\]$/m.exec(dockerfile)?.[1]
    expect(pkg.scripts.start).toBe(`node ${cmd}`)
  })

  it('compose runs the gateway with RabbitMQ and Redis', () => {
    const compose = readFileSync(join(ROOT, 'compose.yaml'), 'utf8')
    for (const service of ['gateway:', 'rabbitmq:', 'redis:']) expect(compose).toContain(`  ${service}`)
    expect(compose).toContain('RTW_AMQP_URL: amqp://guest:guest@rabbitmq:5672')
    expect(compose).toContain('RTW_REDIS_URL: redis://redis:6379')
  })
})
