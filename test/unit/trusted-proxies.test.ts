// trustedProxies: parsing and validation in the config loader, and the client
// address the WebSocket upgrade takes, which must be the req.ip Fastify computes
// for REST from the same trust function.
import type { IncomingMessage } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../gateway/config.js'
import { clientAddress, compileTrust } from '../../core/client-address.js'

const dir = mkdtempSync(join(tmpdir(), 'rtw-trusted-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

/** A request as the WebSocket upgrade sees it: a peer address and headers. */
function upgrade (peer: string | undefined, xff?: string): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } } as unknown as IncomingMessage
}

describe('trustedProxies in the config', () => {
  it('defaults to empty: nobody is trusted', () => {
    const { config } = loadConfig()
    expect(config.trustedProxies).toEqual([])
    expect(compileTrust(config.trustedProxies)).toBeUndefined()
  })

  it('is read from the file, the environment and the command line, later sources winning', () => {
    const f = join(dir, 'c.json')
    writeFileSync(f, JSON.stringify({ trustedProxies: '10.0.0.0/8' }))
    expect(loadConfig({ file: f }).config.trustedProxies).toEqual(['10.0.0.0/8'])
    expect(loadConfig({ file: f, env: { RTW_TRUSTED_PROXIES: '127.0.0.1,::1' } }).config.trustedProxies).toEqual(['127.0.0.1', '::1'])
    expect(loadConfig({ file: f, env: { RTW_TRUSTED_PROXIES: '127.0.0.1' }, argv: ['--trusted-proxies', '192.168.0.0/16,fd00::/8'] }).config.trustedProxies)
      .toEqual(['192.168.0.0/16', 'fd00::/8'])
    expect(loadConfig({ argv: ['--trusted-proxies=::1'] }).config.trustedProxies).toEqual(['::1'])
  })

  it('accepts IPv4 and IPv6 addresses and ranges, with blanks around commas', () => {
    expect(loadConfig({ env: { RTW_TRUSTED_PROXIES: ' 127.0.0.1 , 10.0.0.0/8,::1, fd00::/8, 192.0.2.7/32,::ffff:10.0.0.1 ,' } }).config.trustedProxies)
      .toEqual(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', '192.0.2.7/32', '::ffff:10.0.0.1'])
    expect(loadConfig({ argv: ['--trusted-proxies', ''] }).config.trustedProxies).toEqual([])
  })

  it.each([
    ['a host name', 'proxy.example.com', /"proxy\.example\.com" is not an IP address or CIDR range/],
    ['a named range', 'loopback', /"loopback" is not an IP address/],
    ['an IPv4 prefix over 32', '10.0.0.0/33', /"10\.0\.0\.0\/33" has a prefix length outside 1-32/],
    ['an IPv6 prefix over 128', '::/129', /"::\/129" has a prefix length outside 1-128/],
    ['a /0 range (everyone)', '0.0.0.0/0', /"0\.0\.0\.0\/0" has a prefix length outside 1-32/],
    ['a prefix that is not a number', '10.0.0.0/a', /prefix length/],
    ['a netmask', '10.0.0.0/255.0.0.0', /prefix length/],
    ['two slashes', '10.0.0.0/8/8', /not an IP address or CIDR range/],
    ['an address with a port', '127.0.0.1:8080', /not an IP address/],
    ['a bracketed IPv6 address', '[::1]', /not an IP address/],
    ['a bad entry after a good one', '127.0.0.1,999.0.0.1', /"999\.0\.0\.1"/]
  ])('refuses %s with RTW_CONFIG_INVALID naming the field and the source', (_what, value, reason) => {
    const env = configError(() => loadConfig({ env: { RTW_TRUSTED_PROXIES: value } }))
    expect(env.code).toBe('RTW_CONFIG_INVALID')
    expect(env.message).toMatch(/^environment RTW_TRUSTED_PROXIES: trustedProxies must be a comma list of IP addresses and CIDR ranges/)
    expect(env.message).toMatch(reason)
    expect(configError(() => loadConfig({ argv: ['--trusted-proxies', value] })).message).toMatch(/^command line --trusted-proxies: trustedProxies /)
  })

  it('takes a JSON array in the file, and checks each entry', () => {
    const f = join(dir, 'array.json')
    writeFileSync(f, JSON.stringify({ trustedProxies: ['127.0.0.1', ' 10.0.0.0/8 '] }))
    expect(loadConfig({ file: f }).config.trustedProxies).toEqual(['127.0.0.1', '10.0.0.0/8'])
    writeFileSync(f, JSON.stringify({ trustedProxies: ['127.0.0.1', 'proxy.example.com'] }))
    expect(configError(() => loadConfig({ file: f })).message).toMatch(/config file .*: trustedProxies must be a comma list of IP addresses.*"proxy\.example\.com"/)
  })

  it('refuses a value that is neither a string nor an array of strings in the file', () => {
    const f = join(dir, 'number.json')
    writeFileSync(f, JSON.stringify({ trustedProxies: [127] }))
    expect(configError(() => loadConfig({ file: f })).message).toMatch(/config file .*: trustedProxies must be a comma list, or in a config file an array of strings/)
  })
})

describe('clientAddress', () => {
  it('is the socket address when nobody is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(upgrade('127.0.0.1', '203.0.113.1'), undefined)).toBe('127.0.0.1')
    expect(clientAddress(upgrade(undefined, '203.0.113.1'), compileTrust(['127.0.0.1']))).toBeUndefined()
  })

  it('is the rightmost address that is not a trusted proxy', () => {
    const trust = compileTrust(['127.0.0.1', '10.0.0.0/8', '::1'])
    expect(clientAddress(upgrade('127.0.0.1', '203.0.113.1'), trust)).toBe('203.0.113.1')
    // A client cannot hide behind an address it writes on the left.
    expect(clientAddress(upgrade('127.0.0.1', '198.51.100.7, 203.0.113.1'), trust)).toBe('203.0.113.1')
    // Trusted hops are skipped; the leftmost is taken when every hop is trusted.
    expect(clientAddress(upgrade('10.1.2.3', '203.0.113.1, 10.0.0.5'), trust)).toBe('203.0.113.1')
    expect(clientAddress(upgrade('::1', '10.0.0.5, 10.0.0.6'), trust)).toBe('10.0.0.5')
    // A trusted proxy that adds no header: the proxy itself.
    expect(clientAddress(upgrade('127.0.0.1'), trust)).toBe('127.0.0.1')
    // An IPv4 range covers the IPv4-mapped form a dual-stack listener reports.
    expect(clientAddress(upgrade('::ffff:10.1.2.3', '2001:db8::1'), trust)).toBe('2001:db8::1')
  })

  it('ignores X-Forwarded-For from a peer that is not trusted', () => {
    const trust = compileTrust(['10.9.9.9'])
    expect(clientAddress(upgrade('127.0.0.1', '203.0.113.1'), trust)).toBe('127.0.0.1')
    expect(clientAddress(upgrade('127.0.0.1', '10.9.9.9'), trust)).toBe('127.0.0.1')
  })

  it('agrees with Fastify\'s req.ip given the same trust function', async () => {
    const trust = compileTrust(['127.0.0.1', '10.0.0.0/8', '2001:db8::/32'])
    const app = Fastify({ trustProxy: trust ?? false })
    app.get('/', async req => ({ ip: req.ip, ours: clientAddress(req.raw, trust) }))
    try {
      const cases: Array<[string, string | undefined]> = [
        ['127.0.0.1', '203.0.113.1'],
        ['127.0.0.1', '198.51.100.7, 203.0.113.1'],
        ['127.0.0.1', '203.0.113.1, 10.0.0.5, 127.0.0.1'],
        ['10.1.2.3', '10.0.0.5'],
        ['192.0.2.9', '203.0.113.1'],
        ['127.0.0.1', undefined],
        ['2001:db8::5', '2001:db9::1, 2001:db8::7'],
        ['127.0.0.1', 'not-an-address']
      ]
      for (const [peer, xff] of cases) {
        const res = await app.inject({ url: '/', remoteAddress: peer, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } })
        const { ip, ours } = res.json() as { ip: string, ours: string }
        expect(ours, `${peer} ${xff ?? ''}`).toBe(ip)
      }
    } finally {
      await app.close()
    }
  })
})
