// allowedOrigins: none = same origin, "*" any, else a list; no Origin header passes.
import { describe, expect, it } from 'vitest'
import { originAllowed, parseOriginPolicy } from '../../core/origins.js'

describe('origin policy', () => {
  it('"" allows the same origin (Origin host equals Host) and clients that send no Origin', () => {
    const p = parseOriginPolicy([])
    expect(p.kind).toBe('same-origin')
    expect(originAllowed(p, undefined, '127.0.0.1:8080')).toBe(true)
    expect(originAllowed(p, 'http://127.0.0.1:8080', '127.0.0.1:8080')).toBe(true)
    expect(originAllowed(p, 'https://GW.example.com', 'gw.example.com')).toBe(true)
    expect(originAllowed(p, 'http://127.0.0.1:8081', '127.0.0.1:8080')).toBe(false)
    expect(originAllowed(p, 'http://evil.example', '127.0.0.1:8080')).toBe(false)
    expect(originAllowed(p, 'null', '127.0.0.1:8080')).toBe(false)
    expect(originAllowed(p, 'http://127.0.0.1:8080/path', '127.0.0.1:8080')).toBe(false)
    expect(originAllowed(p, 'http://user@127.0.0.1:8080', '127.0.0.1:8080')).toBe(false)
    expect(originAllowed(p, 'http://127.0.0.1:8080', undefined)).toBe(false)
  })

  it('"*" allows any origin, "null" included', () => {
    const p = parseOriginPolicy(['*'])
    expect(originAllowed(p, 'http://evil.example', 'x')).toBe(true)
    expect(originAllowed(p, 'null', 'x')).toBe(true)
  })

  it('a list allows exactly its origins, case-insensitively and ignoring a trailing slash', () => {
    const p = parseOriginPolicy(['https://app.example.com', 'http://localhost:5173/'])
    expect(originAllowed(p, 'https://app.example.com', 'gw')).toBe(true)
    expect(originAllowed(p, 'HTTPS://APP.EXAMPLE.COM', 'gw')).toBe(true)
    expect(originAllowed(p, 'http://localhost:5173', 'gw')).toBe(true)
    expect(originAllowed(p, 'http://app.example.com', 'gw')).toBe(false)
    expect(originAllowed(p, 'https://app.example.com.evil.example', 'gw')).toBe(false)
    // Not same-origin either: a list replaces the default.
    expect(originAllowed(p, 'http://gw', 'gw')).toBe(false)
    expect(originAllowed(p, undefined, 'gw')).toBe(true)
  })
})
