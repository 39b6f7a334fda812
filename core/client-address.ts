// Whose address a request comes from, behind reverse proxies (config
// trustedProxies). One rule for every transport that has headers: REST
// (Fastify's req.ip, given the same trust function) and WebSocket upgrades.
// MQTT over TCP has no headers and keeps the socket address.
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
// The same package (and, deduplicated, the same copy) Fastify's req.ip uses, so
// a WebSocket upgrade walks X-Forwarded-For exactly as REST requests do.
import proxyAddr from '@fastify/proxy-addr'

/** True when `address` (hop 0 = the socket's peer) is a proxy whose X-Forwarded-For is believed. */
export type Trust = (address: string, hop: number) => boolean

/**
 * Checks the entries of a trustedProxies value: IPv4/IPv6 addresses and CIDR
 * ranges ("127.0.0.1", "10.0.0.0/8", "::1"). Throws an Error naming the
 * first bad entry.
 */
export function checkTrustedProxies (entries: readonly string[]): void {
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/')
    const family = isIP(address)
    if (family === 0 || extra !== undefined) throw new Error(`"${entry}" is not an IP address or CIDR range`)
    // /0 would trust every address, which proxy-addr refuses too.
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128))) {
      throw new Error(`"${entry}" has a prefix length outside 1-${family === 4 ? 32 : 128}`)
    }
  }
  try {
    if (entries.length > 0) proxyAddr.compile([...entries])
  } catch (err) {
    throw new Error((err as Error).message)
  }
}

/** The trust function for a trustedProxies value; undefined when it is empty (trust nobody). */
export function compileTrust (entries: readonly string[]): Trust | undefined {
  checkTrustedProxies(entries)
  return entries.length === 0 ? undefined : proxyAddr.compile([...entries])
}

/**
 * The client's address: the socket's peer, or, when that peer is trusted, the
 * rightmost address in X-Forwarded-For that is not a trusted proxy (the
 * leftmost when every hop is trusted). Undefined once the socket is gone.
 */
export function clientAddress (req: IncomingMessage, trust: Trust | undefined): string | undefined {
  const peer = req.socket.remoteAddress
  if (trust === undefined || peer === undefined) return peer
  return proxyAddr(req, trust)
}
