import { describe, expect, it } from 'vitest'
import { compileGrants, filterCovers } from '../../core/grants.js'
import { mayPublishWith, maySubscribeWith } from '../../gateway/plugins/auth.js'

describe('filterCovers', () => {
  it.each([
    ['a/#', 'a/b/c', true], ['a/#', 'a/#', true], ['a/#', 'a', true], ['a/+', 'a/b', true], ['a/+', 'a/+', true],
    ['a/+', 'a/#', false], ['a/+', 'a/b/c', false], ['a/b', 'a/+', false], ['a/b', 'a/b', true], ['#', 'x/y', true],
    ['#', '$SYS/#', false], ['+/x', '$SYS/x', false], ['a/+/c', 'a/+/c', true], ['a/+/c', 'a/b/#', false]
  ])('grant %s covers %s: %s', (grant, filter, expected) => {
    expect(filterCovers(grant, filter)).toBe(expected)
  })
})

describe('compileGrants', () => {
  it('expands ${sub} and ${clientid}, and drops grants whose value would inject levels or wildcards', () => {
    const g = compileGrants({ publish: ['u/${sub}/#', 'd/${clientid}'], subscribe: ['u/${sub}/#'] }, 'alice', 'phone')
    expect(g.mayPublish('u/alice/x')).toBe(true)
    expect(g.mayPublish('u/bob/x')).toBe(false)
    expect(g.mayPublish('d/phone')).toBe(true)
    const evil = compileGrants({ publish: ['u/${sub}/x'] }, '+', 'c')
    expect(evil.mayPublish('u/anyone/x')).toBe(false)
    const rest = compileGrants({ publish: ['d/${clientid}'] }, 'alice')
    expect(rest.mayPublish('d/')).toBe(false)
  })

  // [P-11.3] every grant kind, every placeholder, every value that would widen a grant.
  const WIDENING = ['*', '+', '#', '/', '', 'a/b', 'a+', 'x#', 'a*', '$SYS', '$req', 'nul\u0000']
  it.each(WIDENING)('a ${sub} or ${clientid} of %j voids the grant, whatever its kind', (value) => {
    for (const placeholder of ['${sub}', '${clientid}']) {
      const claim = {
        call: [placeholder, `svc-${placeholder}`],
        serve: [placeholder, `svc-${placeholder}`],
        publish: [placeholder, `${placeholder}/#`, `u/${placeholder}/#`],
        subscribe: [placeholder, `${placeholder}/#`, `u/${placeholder}/#`]
      }
      const g = placeholder === '${sub}' ? compileGrants(claim, value, 'c') : compileGrants(claim, 's', value)
      for (const service of ['*', 'echo', 'svc-', 'svc-x', value]) {
        expect(g.mayCall(service), `call ${service}`).toBe(false)
        expect(g.mayServe(service), `serve ${service}`).toBe(false)
      }
      for (const topic of ['u/x/y', 'u//y', 'u', 'a', '$SYS/x', '$req/echo/x', 'x']) expect(g.mayPublish(topic), `publish ${topic}`).toBe(false)
      for (const filter of ['#', 'u/#', 'u/+/y', '$SYS/#', '$req/#', 'x/#']) expect(g.maySubscribe(filter), `subscribe ${filter}`).toBe(false)
    }
  })

  it('a safe value still expands in every grant kind', () => {
    const claim = { call: ['${sub}'], serve: ['svc-${clientid}'], publish: ['u/${sub}/#'], subscribe: ['d/${clientid}/#'] }
    const g = compileGrants(claim, 'alice', 'phone')
    expect([g.mayCall('alice'), g.mayCall('bob'), g.mayServe('svc-phone'), g.mayServe('svc-x')]).toEqual([true, false, true, false])
    expect([g.mayPublish('u/alice/x'), g.mayPublish('u/bob/x'), g.maySubscribe('d/phone/#'), g.maySubscribe('d/+/#')]).toEqual([true, false, true, false])
  })

  it('ignores malformed claims rather than granting anything', () => {
    for (const claim of [undefined, null, 'x', 42, { publish: 'a/#' }, { call: [1, 2] }]) {
      const g = compileGrants(claim, 's')
      expect(g.mayPublish('a/b')).toBe(false)
      expect(g.mayCall('echo')).toBe(false)
      expect(g.mayServe('echo')).toBe(false)
      expect(g.maySubscribe('a/#')).toBe(false)
    }
  })

  it('"*" for call and serve means every service', () => {
    const g = compileGrants({ call: ['*'], serve: ['*'] }, 's')
    expect(g.mayCall('anything')).toBe(true)
    expect(g.mayServe('anything')).toBe(true)
  })
})

describe('what MQTT packets need', () => {
  const g = compileGrants({ call: ['echo'], serve: ['thermo'], publish: ['t/#'], subscribe: ['t/#'] }, 's', 'c')
  it('publishing: call for $req, serve for $res, grants otherwise', () => {
    expect(mayPublishWith(g, '$req/echo/x')).toBe(true)
    expect(mayPublishWith(g, '$req/thermo/x')).toBe(false)
    expect(mayPublishWith(g, '$res/thermo/$rid/1')).toBe(true)
    expect(mayPublishWith(g, '$res/echo/$rid/1')).toBe(false)
    expect(mayPublishWith(g, 't/1')).toBe(true)
    expect(mayPublishWith(g, 'u/1')).toBe(false)
  })
  it('subscribing: serve for $req filters, never wildcard services without serve "*"', () => {
    expect(maySubscribeWith(g, '$req/thermo/#')).toBe(true)
    expect(maySubscribeWith(g, '$req/echo/#')).toBe(false)
    expect(maySubscribeWith(g, '$req/+/x')).toBe(false)
    expect(maySubscribeWith(g, '$req/#')).toBe(false)
    expect(maySubscribeWith(g, 't/+')).toBe(true)
    expect(maySubscribeWith(g, '#')).toBe(false)
    expect(maySubscribeWith(g, '$result/k3Jx9')).toBe(true)
  })
})
