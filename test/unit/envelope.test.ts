// Request and reply envelopes (core/envelope.ts).
import { describe, expect, it } from 'vitest'
import {
  decodeCallerRequest, decodeReply, encodeBody, encodeCallerReply, encodeRequest, endToEndHeaders, type RequestEnvelope
} from '../../core/envelope.js'

const reply = (v: unknown): ReturnType<typeof decodeReply> => decodeReply(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)))

describe('bodies [P-2.3]', () => {
  it('omits an empty body', () => {
    expect(encodeBody(Buffer.alloc(0))).toEqual({})
  })
  it('sends valid UTF-8 as a string', () => {
    expect(encodeBody(Buffer.from('héllo\u0000\n'))).toEqual({ body: 'héllo\u0000\n' })
  })
  it('sends other bytes as base64, and both decode to the same bytes', () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x41, 0xc3])
    const enc = encodeBody(bytes)
    expect(enc).toEqual({ body: bytes.toString('base64'), enc: 'base64' })
    expect(Buffer.from(enc.body ?? '', 'base64').equals(bytes)).toBe(true)
  })
  it('encodes a request as one line of JSON (line-based tools can pass it through)', () => {
    const env: RequestEnvelope = { id: 'i', method: 'POST', path: '/a', query: '', headers: {}, body: 'two\nlines', replyTo: '$res/s/$rid/i', deadline: 1 }
    const text = encodeRequest(env).toString()
    expect(text).not.toContain('\n')
    expect(JSON.parse(text)).toEqual(env)
  })
})

describe('end-to-end headers [P-2.2]', () => {
  it('drops hop-by-hop and framing headers and the extra ones named, and joins repeated ones', () => {
    const out = endToEndHeaders({
      host: 'h', connection: 'keep-alive', 'keep-alive': '5', 'transfer-encoding': 'chunked', 'content-length': '3', te: 'x', upgrade: 'ws',
      'proxy-authorization': 'p', 'x-rtw-timeout': '5', accept: 'a', 'x-multi': ['1', '2'], 'x-undefined': undefined
    }, new Set(['x-rtw-timeout']))
    expect(out).toEqual({ accept: 'a', 'x-multi': '1, 2' })
  })
})

describe('decodeReply [P-3.3], [P-3.4]', () => {
  it('reads a full reply', () => {
    expect(reply({ id: 'i', status: 201, headers: { 'Content-Type': 'text/csv', 'X-N': 5, 'x-b': true }, body: 'a,b' })).toEqual({
      ok: true, reply: { id: 'i', status: 201, headers: { 'content-type': 'text/csv', 'x-n': '5', 'x-b': 'true' }, body: 'a,b' }
    })
  })

  it('defaults the status to 200 and the content type by body kind', () => {
    expect(reply({ id: 'i', body: 'text' })).toMatchObject({ ok: true, reply: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'text' } })
    expect(reply({ id: 'i', body: { a: 1 } })).toMatchObject({ ok: true, reply: { headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"a":1}' } })
    expect(reply({ id: 'i', body: null })).toMatchObject({ ok: true, reply: { body: 'null' } })
    const bin = reply({ id: 'i', body: Buffer.from([0xff, 1]).toString('base64'), enc: 'base64' })
    expect(bin.ok && bin.reply.headers['content-type']).toBe('application/octet-stream')
    expect(bin.ok && Buffer.isBuffer(bin.reply.body) && bin.reply.body.equals(Buffer.from([0xff, 1]))).toBe(true)
    expect(reply({ id: 'i', status: 204 })).toMatchObject({ ok: true, reply: { status: 204, headers: {}, body: '' } })
  })

  it('keeps a content type the responder named', () => {
    expect(reply({ id: 'i', headers: { 'content-type': 'application/xml' }, body: { a: 1 } })).toMatchObject({ ok: true, reply: { headers: { 'content-type': 'application/xml' } } })
  })

  it('drops hop-by-hop headers a responder sends', () => {
    const r = reply({ id: 'i', headers: { connection: 'close', 'transfer-encoding': 'chunked', 'content-length': '99', 'x-ok': '1' }, body: 'b' })
    expect(r.ok && r.reply.headers).toEqual({ 'x-ok': '1', 'content-type': 'text/plain; charset=utf-8' })
  })

  it('checks header names the same way every time, however often they were seen', () => {
    for (let i = 0; i < 3; i++) {
      const r = reply({ id: 'i', headers: { 'X-Ok': '1', Connection: 'close' }, body: 'b' })
      expect(r.ok && r.reply.headers).toEqual({ 'x-ok': '1', 'content-type': 'text/plain; charset=utf-8' })
      expect(reply({ id: 'i', headers: { 'X-Ok': '1', 'bad name': 'x' } }).ok).toBe(false)
      expect(reply({ id: 'i', headers: { 'X-Ok': 'a\nb' } }).ok).toBe(false)
    }
  })

  it('reads an unchanged request envelope (mirror echo) as 200 with its body and content type only [P-7.1]', () => {
    const env = { id: 'i', method: 'POST', path: '/x', query: '', headers: { 'content-type': 'application/json', accept: '*/*', 'x-a': '1' }, body: '{"k":1}', replyTo: '$res/s/$rid/i', deadline: 1 }
    expect(reply(env)).toEqual({ ok: true, reply: { id: 'i', status: 200, headers: { 'content-type': 'application/json' }, body: '{"k":1}' } })
    const bin = reply({ ...env, headers: {}, body: Buffer.from([0xff]).toString('base64'), enc: 'base64' })
    expect(bin.ok && bin.reply.headers).toEqual({ 'content-type': 'application/octet-stream' })
  })

  it.each([
    ['not JSON', 'nope'],
    ['a JSON array', '[]'],
    ['a JSON string', '"x"'],
    ['a status below 100', { id: 'i', status: 99 }],
    ['an informational (1xx) status', { id: 'i', status: 100 }],
    ['status 101', { id: 'i', status: 101 }],
    ['status 199', { id: 'i', status: 199 }],
    ['a status above 599', { id: 'i', status: 600 }],
    ['a fractional status', { id: 'i', status: 200.5 }],
    ['a string status', { id: 'i', status: '200' }],
    ['headers that are an array', { id: 'i', headers: [] }],
    ['a header that is an object', { id: 'i', headers: { a: {} } }],
    ['a header name with a space', { id: 'i', headers: { 'bad name': 'x' } }],
    ['an empty header name', { id: 'i', headers: { '': 'x' } }],
    ['a header value with a newline (response splitting)', { id: 'i', headers: { 'x-a': 'a\r\nset-cookie: x=1' } }],
    ['a header value above U+00FF', { id: 'i', headers: { 'x-a': '中' } }],
    ['an unknown encoding', { id: 'i', body: 'x', enc: 'gzip' }],
    ['a base64 body that is not a string', { id: 'i', body: 1, enc: 'base64' }]
  ])('refuses %s', (_what, v) => {
    expect(reply(v).ok).toBe(false)
  })

  it('keeps the id of an invalid reply, so the $rid/mirror caller can be told 502', () => {
    expect(reply({ id: 'abc', status: 1000 })).toMatchObject({ ok: false, id: 'abc' })
  })
})

describe('encodeCallerReply [P-4.4]', () => {
  it('carries the caller id, status, headers and a string body', () => {
    const out = JSON.parse(encodeCallerReply('mine', { id: 'gw', status: 201, headers: { a: 'b' }, body: 'x' }).toString())
    expect(out).toEqual({ id: 'mine', status: 201, headers: { a: 'b' }, body: 'x' })
  })
  it('omits an empty body, and sends bytes as UTF-8 or base64', () => {
    expect(JSON.parse(encodeCallerReply('c', { id: undefined, status: 204, headers: {}, body: '' }).toString())).toEqual({ id: 'c', status: 204, headers: {} })
    expect(JSON.parse(encodeCallerReply('c', { id: undefined, status: 200, headers: {}, body: Buffer.from('ok') }).toString())).toMatchObject({ body: 'ok' })
    const bin = JSON.parse(encodeCallerReply('c', { id: undefined, status: 200, headers: {}, body: Buffer.from([0xff]) }).toString())
    expect(bin).toMatchObject({ body: '/w==', enc: 'base64' })
  })
})

describe('decodeCallerRequest [P-4.1]', () => {
  const req = (v: unknown): ReturnType<typeof decodeCallerRequest> => decodeCallerRequest(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)))

  it('fills in defaults', () => {
    expect(req({ id: '1', replyTo: '$inbox/c/r' })).toEqual({ ok: true, request: { id: '1', replyTo: '$inbox/c/r', method: 'POST', query: '', headers: {} } })
  })

  it('keeps method, query, headers, body, enc and timeout', () => {
    expect(req({ id: '1', replyTo: '$inbox/c/r', method: 'PATCH', query: 'a=1', headers: { 'X-A': 'b' }, body: '/w==', enc: 'base64', timeout: 500 })).toEqual({
      ok: true, request: { id: '1', replyTo: '$inbox/c/r', method: 'PATCH', query: 'a=1', headers: { 'x-a': 'b' }, body: '/w==', enc: 'base64', timeout: 500 }
    })
  })

  it('sends a non-string body as JSON with a JSON content type', () => {
    expect(req({ id: '1', replyTo: 'r', body: { a: [1] } })).toMatchObject({ ok: true, request: { body: '{"a":[1]}', headers: { 'content-type': 'application/json' } } })
  })

  it.each([
    ['not JSON', 'x', undefined],
    ['an array', '[]', undefined],
    ['no id', { replyTo: 'r' }, undefined],
    ['an empty id', { id: '', replyTo: 'r' }, undefined],
    ['an id over 128 characters', { id: 'x'.repeat(129), replyTo: 'r' }, undefined],
    ['a numeric id', { id: 1, replyTo: 'r' }, undefined],
    ['no replyTo', { id: '1' }, '1'],
    ['a lower-case method', { id: '1', replyTo: 'r', method: 'get' }, '1'],
    ['a query that is not a string', { id: '1', replyTo: 'r', query: { a: 1 } }, '1'],
    ['bad headers', { id: '1', replyTo: 'r', headers: { a: [1] } }, '1'],
    ['an unknown enc', { id: '1', replyTo: 'r', body: 'x', enc: 'hex' }, '1'],
    ['a negative timeout', { id: '1', replyTo: 'r', timeout: -1 }, '1'],
    ['a fractional timeout', { id: '1', replyTo: 'r', timeout: 1.5 }, '1'],
    ['a string timeout', { id: '1', replyTo: 'r', timeout: '5' }, '1']
  ])('refuses %s', (_what, v, id) => {
    const r = req(v)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.id).toBe(id)
  })
})
