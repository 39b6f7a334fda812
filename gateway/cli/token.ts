// `npm run token -- …`: mint a JWT with RealTime-Web grants, to try auth in a minute.
import { readFileSync } from 'node:fs'
import { createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { SignJWT } from 'jose'
import type { GrantClaim } from '../../core/grants.js'

const USAGE = `Usage: npm run token -- [options]
  --sub NAME          subject (default "user")
  --call SERVICE      may call SERVICE over REST or MQTT (repeatable; "*" = any)
  --serve SERVICE     may answer SERVICE's requests (repeatable; "*" = any)
  --publish FILTER    may publish to topics matching FILTER (repeatable; \${sub} and \${clientid} allowed)
  --subscribe FILTER  may subscribe within FILTER (repeatable)
  --clientid ID       may connect over MQTT only with this client id (repeatable; \${sub} allowed; a trailing * matches any rest)
  --ttl DURATION      lifetime: 30s, 15m, 1h, 7d (default 1h)
  --aud AUD --iss ISS audience and issuer claims
  --secret SECRET     HS256 secret (default: RTW_JWT_SECRET)
  --key FILE --alg RS256|ES256 [--kid KID]   sign with a private key instead`

function parse (argv: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i] as string
    const value = argv[i + 1]
    if (!name.startsWith('--') || value === undefined) throw new Error(`bad argument ${name}\n\n${USAGE}`)
    out.set(name.slice(2), [...(out.get(name.slice(2)) ?? []), value])
    i++
  }
  return out
}

function ttlSeconds (text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text)
  if (m === null) throw new Error(`--ttl must look like 30s, 15m, 1h or 7d (got ${text})`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd']
}

export async function mintToken (argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const args = parse(argv)
  const one = (k: string): string | undefined => args.get(k)?.at(-1)
  const rtw: GrantClaim = {}
  for (const k of ['call', 'serve', 'publish', 'subscribe', 'clientid'] as const) {
    const v = args.get(k)
    if (v !== undefined) rtw[k] = v
  }
  const alg = one('alg') ?? (one('key') === undefined ? 'HS256' : 'RS256')
  let key: KeyObject
  if (one('key') !== undefined) {
    key = createPrivateKey(readFileSync(one('key') as string, 'utf8'))
  } else {
    const secret = one('secret') ?? env.RTW_JWT_SECRET
    if (secret === undefined || secret === '') throw new Error('give --secret or set RTW_JWT_SECRET')
    key = createSecretKey(Buffer.from(secret, 'utf8'))
  }
  const now = Math.floor(Date.now() / 1000)
  let jwt = new SignJWT({ rtw })
    .setProtectedHeader({ alg, typ: 'JWT', ...(one('kid') === undefined ? {} : { kid: one('kid') }) })
    .setSubject(one('sub') ?? 'user')
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds(one('ttl') ?? '1h'))
  if (one('aud') !== undefined) jwt = jwt.setAudience(one('aud') as string)
  if (one('iss') !== undefined) jwt = jwt.setIssuer(one('iss') as string)
  return jwt.sign(key)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE)
  } else {
    mintToken(argv, process.env).then(t => console.log(t), (err: Error) => {
      console.error(err.message)
      process.exit(2)
    })
  }
}
