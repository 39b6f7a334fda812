// Topic grammar of the $req/$res contract (core/topics.ts).
import { describe, expect, it } from 'vitest'
import {
  isOwnInbox, isValidPath, isValidPathLevel, isValidService, isValidTopicFilter, isValidTopicName,
  mirrorTopic, parseReplyTopic, parseRequestTopic, replyTopic, requestTopic, topicMatches
} from '../../core/topics.js'

describe('service names and path levels [P-1.2], [P-1.3]', () => {
  it.each(['echo', 'realtimeweb', 'a', 'A-b_9', 'x'.repeat(64)])('accepts the service %s', s => {
    expect(isValidService(s)).toBe(true)
  })
  it.each(['', 'x'.repeat(65), 'a.b', 'a/b', '$req', 'a+', '#', 'a b', 'é', 'a\u0000'])('refuses the service %j', s => {
    expect(isValidService(s)).toBe(false)
  })

  it.each(['a', 'a b', 'é中', 'x.y', '...', 'a$', 'v1.2', '-'])('accepts the path level %j', l => {
    expect(isValidPathLevel(l)).toBe(true)
  })
  it.each(['', '.', '..', '$x', '$', 'a+b', '+', '#', 'a#', 'a/b', 'a\u0000'])('refuses the path level %j', l => {
    expect(isValidPathLevel(l)).toBe(false)
  })

  it.each(['', '/a', '/a/b c/d', '/x.y/z'])('accepts the path %j', p => {
    expect(isValidPath(p)).toBe(true)
  })
  it.each(['a', '/', '/a/', '//a', '/a//b', '/a/../b', '/./a', '/a/$rid', '/+', '/a/#'])('refuses the path %j', p => {
    expect(isValidPath(p)).toBe(false)
  })
})

describe('request, reply and mirror topics [P-1.1], [P-3.1], [P-3.2]', () => {
  it('builds and parses request topics', () => {
    expect(requestTopic('echo', '/a/b')).toBe('$req/echo/a/b')
    expect(requestTopic('echo', '')).toBe('$req/echo')
    expect(parseRequestTopic('$req/echo/a/b')).toEqual({ service: 'echo', path: '/a/b' })
    expect(parseRequestTopic('$req/echo')).toEqual({ service: 'echo', path: '' })
  })

  it.each(['$res/echo/a', 'req/echo/a', '$req/', '$req//a', '$req/echo/', '$req/echo/$x', '$req/e.cho/a', '$req/echo/a/../b', '$req'])('refuses %j as a request topic', t => {
    expect(parseRequestTopic(t)).toBeNull()
  })

  it('swaps $req for $res for the mirror topic', () => {
    expect(mirrorTopic('$req/realtimeweb/x/y')).toBe('$res/realtimeweb/x/y')
    expect(mirrorTopic('$req/echo')).toBe('$res/echo')
  })

  it('builds $rid reply topics and tells them from mirror topics', () => {
    expect(replyTopic('echo', 'abc')).toBe('$res/echo/$rid/abc')
    expect(parseReplyTopic('$res/echo/$rid/abc')).toEqual({ kind: 'rid', service: 'echo', id: 'abc' })
    expect(parseReplyTopic('$res/echo/a/b')).toEqual({ kind: 'mirror', service: 'echo' })
    expect(parseReplyTopic('$res/echo')).toEqual({ kind: 'mirror', service: 'echo' })
    // A $rid level without exactly one id level after it is a mirror path, not a rid reply.
    expect(parseReplyTopic('$res/echo/$rid/')).toEqual({ kind: 'mirror', service: 'echo' })
    expect(parseReplyTopic('$res/echo/$rid/a/b')).toEqual({ kind: 'mirror', service: 'echo' })
    expect(parseReplyTopic('$res/echo/x/$rid/abc')).toEqual({ kind: 'mirror', service: 'echo' })
  })

  it.each(['$req/echo/x', '$res/', '$res//x', 'res/echo', '$resx/echo'])('refuses %j as a reply topic', t => {
    expect(parseReplyTopic(t)).toBeNull()
  })

  it('round-trips every generated request topic', () => {
    for (const [service, path] of [['s', ''], ['s', '/a'], ['svc-1', '/a b/c.d/é']] as const) {
      expect(parseRequestTopic(requestTopic(service, path))).toEqual({ service, path })
    }
  })
})

describe('inboxes [P-4.3]', () => {
  it.each([
    ['$inbox/dev-7/r', 'dev-7', true],
    ['$inbox/dev-7/a/b', 'dev-7', true],
    ['$inbox/dev-7/', 'dev-7', false],
    ['$inbox/dev-7', 'dev-7', false],
    ['$inbox/dev-77/r', 'dev-7', false],
    ['$inbox/dev/r', 'dev-7', false],
    ['$inbox/dev-7/r', 'dev', false],
    ['inbox/dev-7/r', 'dev-7', false],
    ['$res/dev-7/r', 'dev-7', false]
  ])('%s is the own inbox of %s: %s', (topic, clientId, own) => {
    expect(isOwnInbox(topic, clientId)).toBe(own)
  })
})

describe('MQTT topic names and filters', () => {
  it.each([['a', true], ['a/b/c', true], ['/', true], ['$SYS/x', true], ['', false], ['a/+', false], ['a#', false], ['a\u0000', false], ['x'.repeat(65536), false]])(
    'topic name %j valid: %s', (t, ok) => { expect(isValidTopicName(t)).toBe(ok) })

  it.each([['#', true], ['a/#', true], ['+/+/c', true], ['a/+', true], ['$req/#', true], ['', false], ['a#', false], ['a/#/b', false], ['a+/b', false], ['a/b+', false], ['#/a', false], ['a\u0000', false]])(
    'filter %j valid: %s', (f, ok) => { expect(isValidTopicFilter(f)).toBe(ok) })

  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a/b/c', true],
    ['a/#', 'a', true],
    ['#', 'a/b', true],
    ['+/+', 'a/b', true],
    ['+', 'a/b', false],
    ['a/+/c', 'a//c', true],
    ['a/b', 'a/b/c', false],
    // [MQTT-4.7.2-1]: a leading wildcard never matches a "$" topic.
    ['#', '$req/echo/x', false],
    ['+/echo/#', '$req/echo/x', false],
    ['$req/#', '$req/echo/x', true],
    ['$req/+/x', '$req/echo/x', true]
  ])('%s matches %s: %s', (filter, topic, ok) => {
    expect(topicMatches(filter, topic)).toBe(ok)
  })
})
