// Static API keys [P-11.9]: long random secrets in a JSON file, for services and
// devices that cannot mint JWTs. A key stands where a JWT stands (CONNECT
// password, `Authorization: Bearer`) and carries a fixed `sub` and `rtw` grants.
//
//   {"keys":[{"key":"<at least 32 characters>","sub":"echo-service","rtw":{"serve":["echo"]}}]}
//
// The file is read once at start-up (loadConfig); a change needs a restart.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { GrantClaim } from '../../core/grants.js'

export const MIN_KEY_LENGTH = 32

export interface ApiKey {
  readonly key: string
  readonly sub: string
  readonly rtw: GrantClaim
}

// RFC 6750 b64token: what may follow "Bearer " in a header. Hex, base64 and
// base64url keys (`openssl rand -hex 32`) all fit; whitespace and non-ASCII would not survive a header.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
const GRANT_LISTS = ['publish', 'subscribe', 'call', 'serve', 'clientid'] as const
const ENTRY_FIELDS = new Set(['key', 'sub', 'rtw'])

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Validates the text of a key file. Throws an Error whose message names the
 * offending entry by index and never contains a key.
 */
export function parseApiKeys (text: string): ApiKey[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new Error(`not valid JSON (${(err as Error).message})`)
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw new Error('must hold a JSON object with a "keys" array')
  const unknown = Object.keys(doc).filter(k => k !== 'keys')
  if (unknown.length > 0) throw new Error(`unknown top-level field ${unknown.join(', ')} (only "keys" is allowed)`)
  const seen = new Map<string, number>()
  return doc.keys.map((entry: unknown, i: number): ApiKey => {
    const at = `keys[${i}]`
    if (!isObject(entry)) throw new Error(`${at} must be an object with "key", "sub" and optional "rtw"`)
    for (const field of Object.keys(entry)) {
      if (!ENTRY_FIELDS.has(field)) throw new Error(`${at} has unknown field "${field}" (allowed: key, sub, rtw)`)
    }
    const { key, sub, rtw } = entry
    if (typeof key !== 'string') throw new Error(`${at}.key must be a string`)
    if (key.length < MIN_KEY_LENGTH) throw new Error(`${at}.key is too short: ${key.length} characters, at least ${MIN_KEY_LENGTH} are required (e.g. openssl rand -hex 32)`)
    if (!B64TOKEN.test(key)) throw new Error(`${at}.key may use only letters, digits and - . _ ~ + / (then trailing =), as a Bearer token must`)
    const first = seen.get(key)
    if (first !== undefined) throw new Error(`${at}.key duplicates keys[${first}].key; every key must be unique`)
    seen.set(key, i)
    if (typeof sub !== 'string' || sub.length === 0) throw new Error(`${at}.sub must be a non-empty string`)
    const grants: GrantClaim = {}
    if (rtw !== undefined) {
      if (!isObject(rtw)) throw new Error(`${at}.rtw must be an object like {"call":["echo"]}`)
      for (const [name, list] of Object.entries(rtw)) {
        if (!(GRANT_LISTS as readonly string[]).includes(name)) throw new Error(`${at}.rtw has unknown grant "${name}" (allowed: ${GRANT_LISTS.join(', ')})`)
        if (!Array.isArray(list) || !list.every(g => typeof g === 'string' && g.length > 0)) {
          throw new Error(`${at}.rtw.${name} must be an array of non-empty strings`)
        }
        grants[name as keyof GrantClaim] = [...list] as string[]
      }
    }
    return Object.freeze({ key, sub, rtw: Object.freeze(grants) })
  })
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/**
 * Finds the entry for a presented token. Keys are held by their SHA-256, so the
 * lookup's timing depends on a hash the caller cannot steer, never on how many
 * leading characters of a real key it guessed; the final comparison is constant-time.
 */
export function apiKeyLookup<T> (keys: readonly ApiKey[], value: (key: ApiKey) => T): (token: string) => T | undefined {
  const byDigest = new Map<string, { digest: Buffer, value: T }>()
  for (const k of keys) {
    const d = digest(k.key)
    byDigest.set(d.toString('base64'), { digest: d, value: value(k) })
  }
  return token => {
    if (byDigest.size === 0) return undefined
    const d = digest(token)
    const hit = byDigest.get(d.toString('base64'))
    return hit !== undefined && timingSafeEqual(hit.digest, d) ? hit.value : undefined
  }
}
