// The echo service's pure logic (echo-server/echo.ts).
import { describe, expect, it } from 'vitest'
import { echo } from '../../echo-server/echo.js'
import { decodeReply, type RequestEnvelope } from '../../core/envelope.js'

const envelope = (over: Partial<RequestEnvelope> = {}): RequestEnvelope => ({
  id: 'i1', method: 'PUT', path: '/a/b', query: 'x=1', headers: { 'content-type': 'text/csv', accept: '*/*' }, body: 'a,b', replyTo: '$res/echo/$rid/i1', deadline: 1, ...over
})
const run = (env: unknown, topic = '$req/echo/a/b'): ReturnType<typeof echo> => echo(topic, Buffer.from(JSON.stringify(env)))

describe('echo', () => {
  it('answers an envelope on its replyTo with 200, the body, the content type and x-echo-* headers', () => {
    const out = run(envelope())
    expect(out?.topic).toBe('$res/echo/$rid/i1')
    expect(JSON.parse(out?.payload.toString() ?? '')).toEqual({
      id: 'i1', status: 200, headers: { 'x-echo-method': 'PUT', 'x-echo-path': '/a/b', 'x-echo-query': 'x=1', 'content-type': 'text/csv' }, body: 'a,b'
    })
  })

  it('keeps a base64 body base64, and sends no body for none', () => {
    expect(JSON.parse(run(envelope({ body: '/w==', enc: 'base64' }))?.payload.toString() ?? '')).toMatchObject({ body: '/w==', enc: 'base64' })
    const none = JSON.parse(run(envelope({ body: undefined }))?.payload.toString() ?? '') as Record<string, unknown>
    expect(none).not.toHaveProperty('body')
  })

  it('produces a reply the gateway decodes, even for non-ASCII paths and queries', () => {
    const out = run(envelope({ path: '/é/中', query: 'q=中' }))
    const decoded = decodeReply(out?.payload ?? Buffer.alloc(0))
    expect(decoded.ok).toBe(true)
    expect(decoded.ok && decoded.reply.headers['x-echo-path']).toBe(encodeURI('/é/中'))
    expect(decoded.ok && decoded.reply.headers['x-echo-query']).toBe(encodeURI('q=中'))
  })

  it('does not throw on control characters or a lone surrogate (JSON can carry both)', () => {
    const out = run(envelope({ query: 'a=\ud800&b=\n' }))
    const decoded = decodeReply(out?.payload ?? Buffer.alloc(0))
    expect(decoded.ok && decoded.reply.headers['x-echo-query']).toBe('a=%EF%BF%BD&b=%0A')
  })

  it('does not answer fire-and-forget requests (empty replyTo)', () => {
    expect(run(envelope({ replyTo: '' }))).toBeNull()
  })

  it('mirrors anything that is not an envelope unchanged on $res, like the original', () => {
    const raw = Buffer.from([0xff, 0x00, 0x41])
    expect(echo('$req/realtimeweb/x', raw)).toEqual({ topic: '$res/realtimeweb/x', payload: raw })
    expect(run({ hello: 'world' }, '$req/realtimeweb/y')?.topic).toBe('$res/realtimeweb/y')
  })
})
