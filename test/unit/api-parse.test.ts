// The REST bridge's URL and timeout parsing (gateway/routes/api.ts).
import { describe, expect, it } from 'vitest'
import { parseTarget, parseTimeout } from '../../gateway/routes/api.js'
import { GatewayError } from '../../core/errors.js'

function code (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof GatewayError ? err.code : `not a GatewayError: ${String(err)}`
  }
  return undefined
}

describe('parseTarget [P-1.3]', () => {
  it('splits service, path and query', () => {
    expect(parseTarget('/api/echo/a/b?x=1&y=2')).toEqual({ service: 'echo', path: '/a/b', query: 'x=1&y=2', timeoutParam: undefined })
    expect(parseTarget('/api/echo')).toEqual({ service: 'echo', path: '', query: '', timeoutParam: undefined })
    expect(parseTarget('/api/echo?')).toEqual({ service: 'echo', path: '', query: '', timeoutParam: undefined })
  })

  it('decodes each level on its own', () => {
    expect(parseTarget('/api/echo/a%20b/%C3%A9/c.d').path).toBe('/a b/é/c.d')
  })

  it('takes the timeout out of the query, keeping the rest as sent', () => {
    expect(parseTarget('/api/s/p?a=1&timeout=2.5&b=%20')).toMatchObject({ query: 'a=1&b=%20', timeoutParam: '2.5' })
    expect(parseTarget('/api/s/p?timeout=500ms')).toMatchObject({ query: '', timeoutParam: '500ms' })
    expect(parseTarget('/api/s/p?mytimeout=5')).toMatchObject({ query: 'mytimeout=5', timeoutParam: undefined })
    expect(parseTarget('/api/s/p?timeout=%35')).toMatchObject({ timeoutParam: '5' })
  })

  it.each([
    '/api/', '/api//x', '/api/echo/', '/api/echo//x', '/api/echo/x/',
    '/api/echo/+', '/api/echo/%2B', '/api/echo/%23', '/api/+/x', '/api/%23/x',
    '/api/echo/$x', '/api/echo/%24x', '/api/$req/x', '/api/e$/x',
    '/api/echo/a%2Fb', '/api/echo/a%2fb', '/api/a%2Fb/c',
    '/api/echo/..', '/api/echo/%2E%2E/x', '/api/echo/./x', '/api/echo/%2e',
    '/api/echo/%00', '/api/echo/%', '/api/echo/%zz', '/api/' + 'x'.repeat(65), '/api/a.b/c'
  ])('refuses %s with RTW_BAD_TARGET', url => {
    expect(code(() => parseTarget(url))).toBe('RTW_BAD_TARGET')
  })

  it('refuses a timeout value that is not valid percent-encoding with RTW_BAD_TIMEOUT', () => {
    expect(code(() => parseTarget('/api/echo/x?timeout=%zz'))).toBe('RTW_BAD_TIMEOUT')
  })
})

describe('parseTimeout [P-5.4]', () => {
  it.each([
    ['2', 2000], ['1.5', 1500], ['10s', 10_000], ['500ms', 500], [' 3 ', 3000], ['0', 0], ['0ms', 0], ['60', 60_000],
    // Rounded up, so a tiny timeout is still a timeout and not fire-and-forget.
    ['0.0004', 1], ['0.4ms', 1], ['1.0001', 1001]
  ])('reads %j as %d ms', (raw, ms) => {
    expect(parseTimeout(raw, 60_000)).toBe(ms)
  })

  it.each(['', 'soon', '-1', '1e3', '1m', '5 s', '.5', '1.', 'Infinity', '60001ms', '61', '9'.repeat(400)])('refuses %j with RTW_BAD_TIMEOUT', raw => {
    expect(code(() => parseTimeout(raw, 60_000))).toBe('RTW_BAD_TIMEOUT')
  })
})
