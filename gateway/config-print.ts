// `--print-config`: the effective configuration, each value with the source
// that set it (default, file, env, flag), secrets redacted.
import { CONFIG_FIELDS, type Config, type ConfigKey, type Sources } from './config.js'

const REDACTED = '(redacted)'

/** A value as it may be shown: secrets hidden, and the password of any URL (amqp://user:pass@…) too. */
export function redact (key: ConfigKey, value: unknown): string {
  const field = CONFIG_FIELDS[key] as { secret?: boolean }
  if (typeof value === 'string' && value !== '' && field.secret === true) return REDACTED
  // A list is shown as the comma list env and flags take.
  const text = typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : String(value)
  // user:password@ in any URL-looking value, also inside a comma list.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s,]*):[^@\s,]*@/gi, `$1:${REDACTED}@`)
}

export interface PrintedValue { value: string, source: string }

/** The effective config as key → shown value and source, in the order of the config table. */
export function describeConfig (config: Config, sources: Sources): Record<ConfigKey, PrintedValue> {
  const out = {} as Record<ConfigKey, PrintedValue>
  for (const key of Object.keys(CONFIG_FIELDS) as ConfigKey[]) out[key] = { value: redact(key, config[key]), source: sources[key] }
  return out
}

/** One line per key: `key  value  source`, aligned; "(unset)" for an empty value. */
export function printConfig (config: Config, sources: Sources): string {
  const rows = Object.entries(describeConfig(config, sources)).map(([k, v]) => [k, v.value === '' ? '(unset)' : v.value, v.source] as const)
  const w0 = Math.max(...rows.map(r => r[0].length))
  const w1 = Math.min(48, Math.max(...rows.map(r => r[1].length)))
  return ['# effective config: key, value, source (defaults < file < env < flags)', ...rows.map(([k, v, s]) => `${k.padEnd(w0)}  ${v.padEnd(w1)}  ${s}`)].join('\n')
}
