// What the files a config names hold, and the config values that need
// parsing, each read and checked once, by loadConfig: a missing or bad file
// stops start-up with RTW_CONFIG_INVALID naming its key, not a raw ENOENT at
// first use. A Config built another way (tests) is read on first use, once.
import { readFileSync } from 'node:fs'
import { createPublicKey, type KeyObject } from 'node:crypto'
import type { JSONWebKeySet } from 'jose'
import { ConfigError, type Config } from './config.js'
import { parseOriginPolicy, type OriginPolicy } from '../core/origins.js'

export interface TlsFiles { cert: Buffer, key: Buffer }

export interface ConfigFiles {
  /** tlsCertFile and tlsKeyFile; undefined when TLS is off. */
  tls: TlsFiles | undefined
  /** jwtPublicKeyFile, parsed. */
  jwtPublicKey: KeyObject | undefined
  /** jwksFile, parsed. */
  jwks: JSONWebKeySet | undefined
  /** allowedOrigins, parsed. */
  origins: OriginPolicy
}

const cache = new WeakMap<Config, ConfigFiles>()

function read (config: Config, key: 'tlsCertFile' | 'tlsKeyFile' | 'jwtPublicKeyFile' | 'jwksFile'): Buffer {
  try {
    return readFileSync(config[key])
  } catch (err) {
    throw new ConfigError(`${key} ${config[key]}: cannot read it (${(err as Error).message})`)
  }
}

function parse<T> (config: Config, key: 'jwtPublicKeyFile' | 'jwksFile', what: string, f: (text: string) => T): T {
  try {
    return f(read(config, key).toString('utf8'))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`${key} ${config[key]}: not ${what} (${(err as Error).message})`)
  }
}

function jwksOf (text: string): JSONWebKeySet {
  const parsed = JSON.parse(text) as unknown
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new Error('no "keys" array')
  return parsed as JSONWebKeySet
}

/** The config's files and parsed values, read once. */
export function configFiles (config: Config): ConfigFiles {
  let files = cache.get(config)
  if (files === undefined) {
    files = Object.freeze({
      tls: config.tlsCertFile === '' || config.tlsKeyFile === '' ? undefined : { cert: read(config, 'tlsCertFile'), key: read(config, 'tlsKeyFile') },
      jwtPublicKey: config.jwtPublicKeyFile === '' ? undefined : parse(config, 'jwtPublicKeyFile', 'a PEM public key', text => createPublicKey(text)),
      jwks: config.jwksFile === '' ? undefined : parse(config, 'jwksFile', 'a JWKS', jwksOf),
      origins: parseOriginPolicy(config.allowedOrigins)
    })
    cache.set(config, files)
  }
  return files
}
