// The namespace table (core/namespaces.ts, PROTOCOL.md [P-12.7]) and the pure
// checks that read it. test/integration/namespaces.test.ts walks it over sockets.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NAMESPACES, amqpMirrorAllowed, historyCopied, httpPublishAllowed, httpReadAllowed, namespaceOf, subscribeAllowed } from '../../core/namespaces.js'
import { bridgeFiltersProblem } from '../../gateway/amqp/topic-bridge.js'

describe('the namespace table', () => {
  it('finds a topic\'s row by its first level only', () => {
    expect(namespaceOf('$req/echo/x').name).toBe('$req')
    expect(namespaceOf('$req').name).toBe('$req')
    expect(namespaceOf('$requests/x').name).toBe('$')
    expect(namespaceOf('$SYS/broker/uptime').name).toBe('$SYS')
    expect(namespaceOf('a/$req/x').name).toBe('')
    expect(namespaceOf('#').name).toBe('')
  })

  it('keeps HTTP publishers out of every reserved namespace, $result included', () => {
    for (const t of ['$req/echo/x', '$res/echo/$rid/1', '$inbox/c/r', '$result/abc', '$SYS/x']) expect(httpPublishAllowed(t), t).toBe(false)
    for (const t of ['a/b', '$other/x']) expect(httpPublishAllowed(t), t).toBe(true)
  })

  it('lets HTTP read a result by its exact handle only', () => {
    expect(httpReadAllowed('$result/abc')).toBe(true)
    expect(httpReadAllowed('$result/abc/more')).toBe(false)
    expect(httpReadAllowed('$result')).toBe(false)
    expect(httpReadAllowed('$inbox/c/r')).toBe(false)
  })

  it('decides inbox and result subscriptions [P-1.6], [P-10.3]', () => {
    expect(subscribeAllowed('$inbox/me/#', 'me')).toBe(true)
    expect(subscribeAllowed('$inbox/you/#', 'me')).toBe(false)
    expect(subscribeAllowed('$inbox/#', 'me')).toBe(false)
    expect(subscribeAllowed('$inbox/a+b/#', 'a+b')).toBe(false)
    expect(subscribeAllowed('$result/h1', 'me')).toBe(true)
    expect(subscribeAllowed('$result/+', 'me')).toBe(false)
    expect(subscribeAllowed('$result/#', 'me')).toBe(false)
    expect(subscribeAllowed('$result/h1/x', 'me')).toBe(false)
    expect(subscribeAllowed('$res/#', 'me')).toBe(false)
    expect(subscribeAllowed('$res', 'me')).toBe(false)
    expect(subscribeAllowed('$req/echo/#', 'me')).toBe(true)
  })

  it('lets a $history/ filter through only when its copied filter passes its own rule [P-16.1]', () => {
    expect(subscribeAllowed('$history/a/#', 'me')).toBe(true)
    expect(subscribeAllowed('$history/#', 'me')).toBe(true)
    expect(subscribeAllowed('$history/$res/#', 'me')).toBe(false)
    expect(subscribeAllowed('$history/$inbox/you/#', 'me')).toBe(false)
    expect(subscribeAllowed('$history/$inbox/me/#', 'me')).toBe(true)
    expect(subscribeAllowed('$history/$result/+', 'me')).toBe(false)
    expect(subscribeAllowed('$history/', 'me')).toBe(false)
  })

  it('copies to $history only the namespaces whose readers grants decide [P-16.1]', () => {
    for (const topic of ['a/b', '$other/x', '$SYS/broker/uptime']) expect(historyCopied(topic)).toBe(true)
    for (const topic of ['$res/echo/$rid/x', '$req/echo/p', '$inbox/c/r', '$result/h1']) expect(historyCopied(topic)).toBe(false)
  })

  it.each(NAMESPACES.map(ns => [ns.name || 'ordinary', ns] as const))('%s: the AMQP bridge filters follow the mirror column', (_n, ns) => {
    const filter = ns.name === '' ? 'a/#' : ns.name === '$' ? '$other/#' : `${ns.name}/#`
    expect(amqpMirrorAllowed(filter)).toBe(ns.amqpMirror)
    expect(bridgeFiltersProblem([filter]) === undefined).toBe(ns.amqpMirror)
  })

  it('is the table PROTOCOL.md §12 prints', () => {
    const protocol = readFileSync(join(import.meta.dirname, '..', '..', 'PROTOCOL.md'), 'utf8')
    for (const ns of NAMESPACES) {
      if (ns.name.length > 1) expect(protocol, ns.name).toMatch(new RegExp(`^  \\| \`\\${ns.name}\` \\|`, 'm'))
    }
  })
})
