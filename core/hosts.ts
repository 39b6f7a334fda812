// Which Host names the gateway answers (config allowedHosts), against DNS
// rebinding [P-11.10]: a page on evil.example whose name was re-pointed at
// 127.0.0.1 is same-origin with itself, so the Origin check passes; only its
// Host header gives it away. Pure: the transports pass the Host header in.

export type HostPolicy =
  | { kind: 'any' }
  | { kind: 'list', names: ReadonlySet<string>, suffixes: readonly string[] }

/**
 * "*" turns the check off. Otherwise the loopback names and the listed ones are
 * allowed; an entry starting with "." also allows every name under it. The
 * check is on when `enforce` (an anonymous gateway on loopback) or when any
 * name is listed.
 */
export function parseHostPolicy (entries: readonly string[], enforce: boolean): HostPolicy {
  const names = entries.map(e => normalizeName(e)).filter(e => e.length > 0)
  if (names.includes('*') || (names.length === 0 && !enforce)) return { kind: 'any' }
  return {
    kind: 'list',
    names: new Set(names.filter(n => !n.startsWith('.'))),
    suffixes: names.filter(n => n.startsWith('.'))
  }
}

function normalizeName (name: string): string {
  const n = name.trim().toLowerCase()
  return n.length > 1 && n.endsWith('.') ? n.slice(0, -1) : n
}

/** The name part of a Host header: `[::1]:8080` → `[::1]`, `Example.com.:80` → `example.com`. */
export function hostName (host: string): string {
  const h = host.trim()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    // After "]" only ":port" may follow; anything else is not an IPv6 literal.
    if (end === -1 || (end + 1 < h.length && h[end + 1] !== ':')) return h.toLowerCase()
    return h.slice(0, end + 1).toLowerCase()
  }
  const colon = h.lastIndexOf(':')
  return normalizeName(colon === -1 ? h : h.slice(0, colon))
}

/** localhost (and names under it, which browsers resolve to loopback themselves), 127.0.0.0/8 and [::1]. */
export function isLoopbackName (name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || name === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

/** A loopback socket address: 127.0.0.0/8, ::1, or either as an IPv4-mapped IPv6 address. */
export function isLoopbackAddress (address: string | undefined): boolean {
  if (address === undefined) return false
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)
}

/**
 * True when a request with this Host header may be served. No Host at all
 * (HTTP/1.0) is not a browser's request and passes.
 */
export function hostAllowed (policy: HostPolicy, host: string | undefined): boolean {
  if (policy.kind === 'any' || host === undefined) return true
  const name = hostName(host)
  if (isLoopbackName(name) || policy.names.has(name)) return true
  for (const s of policy.suffixes) if (name.endsWith(s) || name === s.slice(1)) return true
  return false
}
