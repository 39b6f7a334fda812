// Raw HTTP requests. fetch() normalises URLs ("..", "%2e%2e", "#"), so the
// 400 tests need node:http, which sends the path exactly as written.
import { request, type IncomingHttpHeaders } from 'node:http'

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The body parsed as a gateway error body (or any JSON object). */
  json: () => { error: { code: string, message: string, requestId?: string } } & Record<string, unknown>
}

export interface RawRequest {
  port: number
  host?: string
  method?: string
  path: string
  headers?: Record<string, string>
  body?: string | Buffer
}

export async function rawRequest (r: RawRequest): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const req = request({
      host: r.host ?? '127.0.0.1',
      port: r.port,
      method: r.method ?? 'GET',
      path: r.path,
      headers: r.headers,
      agent: false
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(r.body)
  })
}

/** The `error.code` of a gateway error body. */
export async function errorCode (res: Response): Promise<string | undefined> {
  const body = await res.json() as { error?: { code?: string } }
  return body.error?.code
}

/** Attempts a WebSocket upgrade (subprotocol mqtt) and resolves its status: 101, or the refusal's status and body. */
export async function wsUpgrade (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  const { default: WebSocket } = await import('ws')
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'mqtt', { headers })
    ws.on('open', () => { ws.close(); resolve({ status: 101, body: '' }) })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); ws.terminate() })
    })
    ws.on('error', reject)
  })
}
