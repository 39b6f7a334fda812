// Text and topic checks Aedes skips: [MQTT-1.5.3-1], [MQTT-1.5.3-2], and the configured topic limits.
import { describe, expect, it } from 'vitest'
import { checkTopic, connectViolation, textViolation } from '../../core/conformance.js'

const limits = { maxTopicLength: 16, maxTopicLevels: 3 }

describe('textViolation', () => {
  it('flags U+0000 and U+FFFD (what ill-formed UTF-8 decodes to)', () => {
    expect(textViolation('a/b')).toBeNull()
    expect(textViolation('é/ü/日本')).toBeNull()
    expect(textViolation('a\u0000b')).toMatch(/U\+0000/)
    expect(textViolation(Buffer.from([0x61, 0xc0, 0xaf]).toString('utf8'))).toMatch(/UTF-8/) // overlong "/"
    expect(textViolation(Buffer.from([0xed, 0xa0, 0x80]).toString('utf8'))).toMatch(/UTF-8/) // a surrogate
    expect(textViolation(Buffer.from([0xe2, 0x82]).toString('utf8'))).toMatch(/UTF-8/) // truncated
  })
})

describe('checkTopic', () => {
  it('passes topics within the limits', () => {
    expect(checkTopic('a/b/c', limits)).toBeNull()
    expect(checkTopic('x'.repeat(16), limits)).toBeNull()
  })

  it('closes on ill-formed text, refuses (without closing) over the limits', () => {
    expect(checkTopic('a\u0000', limits)).toMatchObject({ close: true })
    expect(checkTopic('x'.repeat(17), limits)).toMatchObject({ close: false, reason: expect.stringMatching(/maxTopicLength/) })
    expect(checkTopic('a/b/c/d', limits)).toMatchObject({ close: false, reason: expect.stringMatching(/4 levels/) })
  })

  it('measures length in UTF-8 bytes', () => {
    expect(checkTopic('é'.repeat(8), limits)).toBeNull() // 16 bytes
    expect(checkTopic('é'.repeat(9), limits)).toMatchObject({ close: false }) // 18 bytes, 9 characters
    expect(checkTopic('日本語日本', limits)).toBeNull() // 15 bytes
    expect(checkTopic('日本語日本語', limits)).toMatchObject({ close: false }) // 18 bytes
  })
})

describe('connectViolation', () => {
  it('refuses ill-formed client ids and user names, and Will Topics no PUBLISH could use', () => {
    expect(connectViolation({ clientId: 'dev-1', username: 'u', will: { topic: 'a/b' } }, limits)).toBeNull()
    expect(connectViolation({ clientId: 'a\u0000' }, limits)).toMatch(/client id/)
    expect(connectViolation({ clientId: 'ok', username: '\uFFFD' }, limits)).toMatch(/user name/)
    expect(connectViolation({ clientId: 'ok', will: { topic: 'a/#' } }, limits)).toMatch(/Will Topic/)
    expect(connectViolation({ clientId: 'ok', will: { topic: '' } }, limits)).toMatch(/Will Topic/)
    expect(connectViolation({ clientId: 'ok', will: { topic: 'a/b/c/d' } }, limits)).toMatch(/Will Topic/)
    expect(connectViolation({ clientId: 'ok', will: { topic: 'w', qos: 3 } }, limits)).toMatch(/Will QoS/)
    expect(connectViolation({ clientId: 'ok', password: Buffer.from('t') }, limits)).toMatch(/MQTT-3.1.2-22/)
    expect(connectViolation({ clientId: 'ok', username: '', password: Buffer.from('t') }, limits)).toBeNull()
  })
})
