// The web client's pure parts: backoff, token expiry, topic rules, bodies,
// reply decoding, and its error list kept in sync with the gateway's table.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERRORS } from '../../core/errors.js'
import { backoffDelay } from '../../web-client/src/backoff.js'
import { decodeBytes, encodeBody, fromBase64, toBase64 } from '../../web-client/src/body.js'
import { CLIENT_ERRORS, GatewayError } from '../../web-client/src/errors.js'
import { prepareRequest, toResponse } from '../../web-client/src/response.js'
import { refreshDelay, tokenExpiry } from '../../web-client/src/token.js'
import { isValidTopicFilter, isValidTopicName, topicMatches } from '../../web-client/src/topics.js'

describe('web-client backoff', () => {
  const opts = { minDelayMs: 500, maxDelayMs: 20_000 }

  it('starts between 0.5 and 1 s, doubles its range, and never exceeds 20 s', () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(500)
    expect(backoffDelay(0, opts, () => 0.999)).toBeLessThan(1000)
    expect(backoffDelay(3, opts, () => 0.999)).toBeLessThan(500 + 4000)
    for (const step of [10, 31, 100, 10_000]) {
      expect(backoffDelay(step, opts, () => 0.999)).toBe(20_000)
      expect(backoffDelay(step, opts, () => 0)).toBe(500)
    }
  })

  it('spreads clients out: full jitter', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5, opts)))
    expect(seen.size).toBeGreaterThan(10)
  })
})

describe('web-client tokens', () => {
  const jwt = (claims: object): string => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`

  it('reads exp from a JWT, and nothing from other strings', () => {
    expect(tokenExpiry(jwt({ exp: 1_700_000_000, sub: 'ü' }))).toBe(1_700_000_000_000)
    expect(tokenExpiry(jwt({ sub: 'x' }))).toBeUndefined()
    expect(tokenExpiry('not-a-jwt')).toBeUndefined()
    expect(tokenExpiry('a.%%%.c')).toBeUndefined()
  })

  it('refreshes a quarter of the remaining life early, at most the margin early', () => {
    expect(refreshDelay(10_000, 0, 60_000)).toBe(7_500)
    expect(refreshDelay(3_600_000, 0, 60_000)).toBe(3_540_000)
    expect(refreshDelay(1_000, 5_000, 60_000)).toBe(0)
  })
})

describe('web-client topics', () => {
  it('validates names and filters as MQTT 3.1.1 does', () => {
    expect(isValidTopicName('a/b')).toBe(true)
    for (const bad of ['', 'a/+', '#', 'a\u0000b']) expect(isValidTopicName(bad)).toBe(false)
    for (const ok of ['#', 'a/#', '+/b/+', '$inbox/c/#', 'a']) expect(isValidTopicFilter(ok)).toBe(true)
    for (const bad of ['', 'a/#/b', 'a+', 'a/b#', 'x\u0000']) expect(isValidTopicFilter(bad)).toBe(false)
  })

  it('matches filters, and keeps wildcards off $-topics [MQTT-4.7.2-1]', () => {
    expect(topicMatches('demo/#', 'demo')).toBe(true)
    expect(topicMatches('demo/#', 'demo/a/b')).toBe(true)
    expect(topicMatches('demo/+', 'demo/a/b')).toBe(false)
    expect(topicMatches('+/a', 'x/a')).toBe(true)
    expect(topicMatches('#', '$SYS/x')).toBe(false)
    expect(topicMatches('$inbox/c/#', '$inbox/c/1')).toBe(true)
  })
})

describe('web-client bodies and replies', () => {
  it('encodes text, bytes and JSON with matching content types', () => {
    expect(encodeBody('hi')).toEqual({ data: 'hi', contentType: 'text/plain; charset=utf-8' })
    expect(encodeBody({ a: 1 })).toEqual({ data: '{"a":1}', contentType: 'application/json' })
    expect(encodeBody(new Uint16Array([1]))).toEqual({ data: new Uint8Array([1, 0]), contentType: 'application/octet-stream' })
    const bytes = new Uint8Array(70_000).map((_, i) => i * 7)
    expect(fromBase64(toBase64(bytes))).toEqual(bytes)
    expect(decodeBytes(new Uint8Array([0xff, 0xfe]))).toEqual(new Uint8Array([0xff, 0xfe]))
    expect(decodeBytes(new TextEncoder().encode('é'))).toBe('é')
  })

  it('defaults the method from the body and knows which methods are idempotent', () => {
    expect(prepareRequest({})).toMatchObject({ method: 'GET', idempotent: true, query: '' })
    expect(prepareRequest({ body: 'x' })).toMatchObject({ method: 'POST', idempotent: false })
    expect(prepareRequest({ method: 'put', query: { a: '1 2' } })).toMatchObject({ method: 'PUT', idempotent: true, query: 'a=1+2' })
    expect(prepareRequest({ method: 'POST', idempotent: true })).toMatchObject({ idempotent: true })
    expect(prepareRequest({ body: 'x', headers: { 'Content-Type': 'text/csv' } }).headers).toEqual({ 'content-type': 'text/csv' })
  })

  it("rejects only the gateway's error shape; a responder's own 4xx resolves", () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
    expect(toResponse(404, {}, enc('{"message":"no such user"}'))).toMatchObject({ status: 404, ok: false })
    expect(toResponse(204, {}, new Uint8Array())).toEqual({ status: 204, headers: {}, body: '', ok: true })
    let err: unknown
    try {
      toResponse(504, { 'x-request-id': 'r1' }, enc('{"error":{"code":"RTW_REPLY_TIMEOUT","message":"late"}}'))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(GatewayError)
    expect(err).toMatchObject({ code: 'RTW_REPLY_TIMEOUT', status: 504, message: 'late', requestId: 'r1' })
  })
})

describe('web-client error codes', () => {
  it("lists every code of the gateway's table, and its own codes are RTW_CLIENT_*", () => {
    const source = readFileSync(new URL('../../web-client/src/errors.ts', import.meta.url), 'utf8')
    const union = /export type GatewayErrorCode =([^]*?)\n\n/.exec(source)?.[1] ?? ''
    const listed = new Set(union.match(/RTW_[A-Z_]+/g))
    expect([...listed].sort()).toEqual(Object.keys(ERRORS).sort())
    for (const code of Object.keys(CLIENT_ERRORS)) expect(code).toMatch(/^RTW_CLIENT_[A-Z_]+$/)
  })

  it('documents every client code in web-client/README.md', () => {
    const readme = readFileSync(new URL('../../web-client/README.md', import.meta.url), 'utf8')
    for (const code of Object.keys(CLIENT_ERRORS)) expect(readme).toContain(code)
  })
})
