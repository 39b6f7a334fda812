// Token verification: static API keys from the key file [P-11.9], then JWTs
// [P-11.1]: HS256 with a shared secret, RS256/ES256 with a PEM public key or a
// JWKS file. jose does the cryptography; this file only chooses keys, checks
// the standard claims and caches good results.
import { createSecretKey, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { apiKeysOf, jwtEnabled, type Config } from '../config.js'
import { configFiles } from '../config-files.js'
import { apiKeyLookup } from './api-keys.js'
import type { CallerIdentity } from '../../core/envelope.js'
export { authEnabled } from '../config.js'

export type TokenResult =
  | { ok: true, subject: string, claims: JWTPayload, expiresAt: number | undefined, caller: CallerIdentity }
  | { ok: false, reason: 'missing' | 'expired' | 'invalid', message: string, hint?: string }

export interface TokenVerifier {
  verify: (token: string | undefined) => Promise<TokenResult>
}

const CACHE_SIZE = 10_000

// Registered claims (RFC 7519 §4.1) and our grants: not passed on as `caller.claims`.
const NOT_FORWARDED = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'rtw'])

/** [P-2.6] The identity a responder is told about: built once per verified token. */
export function callerFromClaims (payload: JWTPayload, via: CallerIdentity['via']): CallerIdentity {
  const caller: CallerIdentity = { sub: typeof payload.sub === 'string' ? payload.sub : '', via }
  if (typeof payload.iss === 'string') caller.iss = payload.iss
  if (typeof payload.aud === 'string' || Array.isArray(payload.aud)) caller.aud = payload.aud
  if (typeof payload.exp === 'number') caller.exp = payload.exp
  let claims: Record<string, unknown> | undefined
  for (const name in payload) {
    if (NOT_FORWARDED.has(name)) continue
    claims ??= {}
    claims[name] = payload[name]
  }
  if (claims !== undefined) caller.claims = claims
  return Object.freeze(caller)
}

export function createVerifier (config: Config): TokenVerifier {
  const secret: KeyObject | undefined = config.jwtSecret === '' ? undefined : createSecretKey(Buffer.from(config.jwtSecret, 'utf8'))
  const files = configFiles(config)
  const publicKey: KeyObject | undefined = files.jwtPublicKey
  const jwks: JWTVerifyGetKey | undefined = files.jwks === undefined ? undefined : createLocalJWKSet(files.jwks)

  // [P-11.9] One result object per key, built once: same shape as a JWT's, no expiry.
  const apiKey = apiKeyLookup(apiKeysOf(config), (k): TokenResult & { ok: true } => Object.freeze({
    ok: true as const,
    subject: k.sub,
    claims: { sub: k.sub, rtw: k.rtw },
    expiresAt: undefined,
    caller: Object.freeze({ sub: k.sub, via: 'api-key' as const })
  }))
  const jwts = jwtEnabled(config)

  const algorithms: string[] = []
  if (secret !== undefined) algorithms.push('HS256')
  if (publicKey !== undefined || jwks !== undefined) algorithms.push('RS256', 'ES256')

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secret !== undefined) return secret
    if (jwks !== undefined && (header.kid !== undefined || publicKey === undefined)) return jwks(header, token)
    if (publicKey !== undefined) return publicKey
    throw new errors.JOSEAlgNotAllowed(`no key for ${header.alg}`)
  }
  const options = {
    algorithms,
    // [P-11.1] a JWT without exp would never expire; API keys are exempt by design [P-11.9].
    ...(config.jwtRequireExp ? { requiredClaims: ['exp'] } : {}),
    ...(config.jwtAudience === '' ? {} : { audience: config.jwtAudience }),
    ...(config.jwtIssuer === '' ? {} : { issuer: config.jwtIssuer })
  }

  // Verified tokens by their text: a REST client sends the same token with every
  // call, and signature checks would otherwise sit on the hot path.
  const cache = new Map<string, TokenResult & { ok: true }>()

  return {
    async verify (token) {
      if (token === undefined || token.length === 0) return { ok: false, reason: 'missing', message: 'no token' }
      const hit = cache.get(token)
      if (hit !== undefined) {
        if (hit.expiresAt === undefined || hit.expiresAt > Date.now()) return hit
        cache.delete(token)
        return { ok: false, reason: 'expired', message: 'token expired' }
      }
      // After the cache: a JWT caller's repeat calls skip the key hash; keys are never cached there.
      const key = apiKey(token)
      if (key !== undefined) return key
      if (!jwts) return { ok: false, reason: 'invalid', message: 'not a configured API key' }
      try {
        const { payload } = await jwtVerify(token, getKey, options)
        const result = {
          ok: true as const,
          subject: typeof payload.sub === 'string' ? payload.sub : '',
          claims: payload,
          expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
          caller: callerFromClaims(payload, 'jwt')
        }
        if (cache.size >= CACHE_SIZE) {
          const oldest = cache.keys().next().value
          if (oldest !== undefined) cache.delete(oldest)
        }
        cache.set(token, result)
        return result
      } catch (err) {
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' }
        if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'exp' && err.reason === 'missing') {
          return { ok: false, reason: 'invalid', message: 'token has no exp claim', hint: 'the token has no exp claim, and jwtRequireExp is on' }
        }
        return { ok: false, reason: 'invalid', message: err instanceof Error ? err.message : 'invalid token' }
      }
    }
  }
}
