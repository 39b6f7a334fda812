// A throwaway self-signed certificate for localhost and 127.0.0.1 (openssl), for TLS tests.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway, type TestGateway } from './gateway.js'

export interface TestCert { dir: string, certFile: string, keyFile: string, remove: () => void }

export function selfSignedCert (prefix: string): TestCert {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile
  ], { stdio: 'ignore' })
  return { dir, certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A test gateway serving https, wss and mqtts with a fresh self-signed certificate; remove the certificate after closing it. */
export async function startTlsGateway (prefix: string): Promise<{ gw: TestGateway, cert: TestCert }> {
  const cert = selfSignedCert(prefix)
  const gw = await startGateway({ tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile })
  return { gw, cert }
}
