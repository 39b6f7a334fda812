// The API key file format and the key lookup [P-11.9].
import { describe, expect, it } from 'vitest'
import { apiKeyLookup, parseApiKeys } from '../../gateway/auth/api-keys.js'

const K1 = 'a'.repeat(32)
const K2 = 'Zm9vYmFyYmF6cXV4LWtleS0wMDAwMDAwMDAwMDAwMA=='

describe('parseApiKeys', () => {
  it('reads keys with their sub and grants; rtw is optional', () => {
    const keys = parseApiKeys(JSON.stringify({ keys: [{ key: K1, sub: 'echo-service', rtw: { serve: ['echo'], call: ['*'] } }, { key: K2, sub: 'bare' }] }))
    expect(keys).toEqual([{ key: K1, sub: 'echo-service', rtw: { serve: ['echo'], call: ['*'] } }, { key: K2, sub: 'bare', rtw: {} }])
    expect(parseApiKeys('{"keys":[]}')).toEqual([])
  })

  it.each([
    ['not json', /not valid JSON/],
    ['[]', /"keys" array/],
    ['{"keys":{}}', /"keys" array/],
    [`{"keys":[],"extra":1}`, /unknown top-level field extra/],
    ['{"keys":["k"]}', /keys\[0\] must be an object/],
    [`{"keys":[{"sub":"a"}]}`, /keys\[0\]\.key must be a string/],
    [`{"keys":[{"key":"${'b'.repeat(31)}","sub":"a"}]}`, /keys\[0\]\.key is too short: 31 characters, at least 32/],
    [`{"keys":[{"key":"${'b'.repeat(31)} ","sub":"a"}]}`, /keys\[0\]\.key may use only/],
    [`{"keys":[{"key":"${K1}","sub":"a"},{"key":"${K1}","sub":"b"}]}`, /keys\[1\]\.key duplicates keys\[0\]\.key/],
    [`{"keys":[{"key":"${K1}"}]}`, /keys\[0\]\.sub must be a non-empty string/],
    [`{"keys":[{"key":"${K1}","sub":""}]}`, /keys\[0\]\.sub must be a non-empty string/],
    [`{"keys":[{"key":"${K1}","sub":"a","name":"x"}]}`, /keys\[0\] has unknown field "name"/],
    [`{"keys":[{"key":"${K1}","sub":"a","rtw":["echo"]}]}`, /keys\[0\]\.rtw must be an object/],
    [`{"keys":[{"key":"${K1}","sub":"a","rtw":{"serves":["echo"]}}]}`, /keys\[0\]\.rtw has unknown grant "serves"/],
    [`{"keys":[{"key":"${K1}","sub":"a","rtw":{"call":"echo"}}]}`, /keys\[0\]\.rtw\.call must be an array of non-empty strings/],
    [`{"keys":[{"key":"${K1}","sub":"a","rtw":{"call":[""]}}]}`, /keys\[0\]\.rtw\.call must be an array/]
  ])('refuses %s', (text, message) => {
    expect(() => parseApiKeys(text)).toThrow(message)
    let msg = ''
    try { parseApiKeys(text) } catch (e) { msg = (e as Error).message }
    expect(msg).not.toContain(K1)
  })
})

describe('apiKeyLookup', () => {
  const lookup = apiKeyLookup(parseApiKeys(JSON.stringify({ keys: [{ key: K1, sub: 'one' }, { key: K2, sub: 'two' }] })), k => k.sub)

  it('finds exactly the configured keys', () => {
    expect(lookup(K1)).toBe('one')
    expect(lookup(K2)).toBe('two')
    for (const t of ['', K1.slice(1), K1 + 'a', K1.toUpperCase(), ' ' + K1, 'eyJhbGciOiJIUzI1NiJ9.e30.x']) expect(lookup(t)).toBeUndefined()
  })

  it('finds nothing when there are no keys', () => {
    expect(apiKeyLookup([], k => k)(K1)).toBeUndefined()
  })
})
