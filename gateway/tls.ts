// The TLS certificate and key (config tlsCertFile, tlsKeyFile): when both are
// set the HTTP port serves https and wss, and the MQTT port serves mqtts.
import { readFileSync } from 'node:fs'
import { ConfigError, type Config } from './config.js'

export interface TlsFiles { cert: Buffer, key: Buffer }

/** The PEM files, read once at start-up; undefined when TLS is off. An unreadable file stops start-up. */
export function loadTls (config: Config): TlsFiles | undefined {
  if (config.tlsCertFile === '' || config.tlsKeyFile === '') return undefined
  const read = (key: 'tlsCertFile' | 'tlsKeyFile'): Buffer => {
    try {
      return readFileSync(config[key])
    } catch (err) {
      throw new ConfigError(`${key} ${config[key]}: ${(err as Error).message}`)
    }
  }
  return { cert: read('tlsCertFile'), key: read('tlsKeyFile') }
}
