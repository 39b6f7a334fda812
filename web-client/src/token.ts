// Token handling: reads a JWT's `exp` (no verification; that is the gateway's
// job) to know when to fetch a fresh one.

function base64UrlDecode (s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/')
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))
  const bytes = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
  return new TextDecoder().decode(bytes)
}

/** A JWT's `exp` in ms since the epoch, or undefined when the token has none or is not a JWT. */
export function tokenExpiry (token: string): number | undefined {
  const part = token.split('.')[1]
  if (part === undefined) return undefined
  try {
    const exp = (JSON.parse(base64UrlDecode(part)) as { exp?: unknown }).exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/**
 * How long from now to refresh a token that expires at expMs: a quarter of its
 * remaining life before expiry, at most refreshMarginMs before it, so short
 * tokens are refreshed in time and long ones not too early.
 */
export function refreshDelay (expMs: number, now: number, refreshMarginMs: number): number {
  const left = expMs - now
  return Math.max(0, left - Math.min(refreshMarginMs, left / 4))
}
