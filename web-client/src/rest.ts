// Requests over REST: <METHOD> <base>/api/<service>/<path…>?<query> with fetch [P-2].
// Independent of the MQTT connection, so no retry policy applies: a network
// failure rejects with RTW_CLIENT_NETWORK.
import { clientError, GatewayError } from './errors.js'
import { normalizePath, prepareRequest, toResponse, type RequestOptions, type Response } from './response.js'

const GRACE_MS = 2000

export async function restRequest (
  fetchFn: typeof fetch, base: string, service: string, path: string,
  options: RequestOptions, timeout: number, token: string | undefined
): Promise<Response> {
  const req = prepareRequest(options)
  if (req.body !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
    throw clientError('RTW_CLIENT_INVALID_ARGUMENT', `fetch cannot send a body with ${req.method}; use via: 'mqtt' or another method`)
  }
  // Each level is encoded on its own, so "/" in a level cannot split it [P-1.3].
  const levels = normalizePath(path).split('/').slice(1).map(encodeURIComponent)
  const url = `${base}/api/${[encodeURIComponent(service), ...levels].join('/')}${req.query === '' ? '' : '?' + req.query}`
  const headers: Record<string, string> = { ...req.headers, 'x-rtw-timeout': `${timeout}ms` }
  if (token !== undefined) headers.authorization ??= `Bearer ${token}`
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), timeout + GRACE_MS)
  try {
    let res: globalThis.Response
    try {
      res = await fetchFn(url, { method: req.method, headers, body: req.body as BodyInit | undefined, signal: abort.signal })
    } catch (err) {
      throw abort.signal.aborted ? clientError('RTW_CLIENT_TIMEOUT', 'the gateway did not answer') : clientError('RTW_CLIENT_NETWORK', (err as Error).message)
    }
    const out: Record<string, string> = {}
    res.headers.forEach((v, k) => { out[k] = v })
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await res.arrayBuffer())
    } catch (err) {
      throw abort.signal.aborted ? clientError('RTW_CLIENT_TIMEOUT', 'the gateway did not answer') : clientError('RTW_CLIENT_NETWORK', (err as Error).message)
    }
    return toResponse(res.status, out, bytes)
  } catch (err) {
    throw err instanceof GatewayError ? err : clientError('RTW_CLIENT_NETWORK', String(err))
  } finally {
    clearTimeout(timer)
  }
}
