// The token of a GET /events or GET /history request [P-15.6]: `Authorization:
// Bearer`, or `?access_token=` for EventSource, which cannot set headers.
// Verified with the same rules, and compiled into the same grants, as REST's.
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ALLOW_ALL, compileGrants, type Grants } from '../../core/grants.js'
import { authEnabled, createVerifier } from './tokens.js'

export type StreamAuth =
  | { ok: true, grants: Grants, expiresAt: number | undefined }
  | { ok: false, reason: 'missing' | 'expired' | 'invalid' }

export type StreamAuthenticator = (req: FastifyRequest) => Promise<StreamAuth>

function tokenOf (req: FastifyRequest): string | undefined {
  const header = req.headers.authorization
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7).trim()
  const q = (req.query as Record<string, unknown>).access_token
  return typeof q === 'string' ? q : undefined
}

export function streamAuthenticator (config: Config): StreamAuthenticator {
  if (!authEnabled(config)) return async () => ({ ok: true, grants: ALLOW_ALL, expiresAt: undefined })
  const verifier = createVerifier(config)
  const compiled = new WeakMap<object, Grants>()
  return async req => {
    const result = await verifier.verify(tokenOf(req))
    if (!result.ok) return { ok: false, reason: result.reason }
    let grants = compiled.get(result)
    if (grants === undefined) {
      grants = compileGrants(result.claims.rtw, result.subject)
      compiled.set(result, grants)
    }
    return { ok: true, grants, expiresAt: result.expiresAt }
  }
}
