// One contract suite for the REST bridge and MQTT-native callers, run against
// several targets (the in-process gateway with the echo process, and the
// pm2-started pair), as MQTT.js runs one abstract client suite per server.
// Call it inside a describe(); the target must be up when its tests run and
// have an echo responder on $req/echo/# and $req/realtimeweb/#.
import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import { connectClient, nextMessage, subscribe } from './mqtt.js'
import { Responder } from './responders.js'
import { rawRequest } from './http.js'

export interface ContractTarget {
  httpUrl: string
  httpPort: number
  mqttUrl: string
}

export function restContract (target: () => ContractTarget): void {
  const post = async (path: string, body: BodyInit, contentType: string, method = 'POST'): Promise<Response> =>
    await fetch(`${target().httpUrl}${path}`, { method, body, headers: { 'content-type': contentType } })

  it('contract: JSON, text and binary bodies round-trip byte for byte', async () => {
    const json = await post('/api/echo/c/json', '{"a": [1, "two"]}', 'application/json')
    expect([json.status, json.headers.get('content-type'), await json.text()]).toEqual([200, 'application/json', '{"a": [1, "two"]}'])
    const text = await post('/api/echo/c/text', 'ünïcödé\r\n\t', 'text/plain; charset=utf-8')
    expect(await text.text()).toBe('ünïcödé\r\n\t')
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(4096)])
    const bin = await post('/api/echo/c/bin', bytes, 'application/octet-stream')
    expect(bin.headers.get('content-type')).toBe('application/octet-stream')
    expect(Buffer.from(await bin.arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('contract: any method reaches the responder', async () => {
    for (const method of ['GET', 'DELETE', 'PROPFIND', 'QUERY', 'PATCH']) {
      const res = await fetch(`${target().httpUrl}/api/echo/c/m`, { method, ...(method === 'GET' || method === 'DELETE' ? {} : { body: method }) })
      expect([res.status, res.headers.get('x-echo-method')]).toEqual([200, method])
    }
  })

  it('contract: the original service name, realtimeweb, is answered', async () => {
    const res = await post('/api/realtimeweb/x', 'legacy', 'text/plain')
    expect([res.status, await res.text()]).toEqual([200, 'legacy'])
  })

  it('contract: 404 RTW_NO_RESPONDER at once, 400 RTW_BAD_TARGET, 202 fire and forget', async () => {
    const start = performance.now()
    const none = await post('/api/contract-nobody/x?timeout=20', 'x', 'text/plain')
    expect(performance.now() - start).toBeLessThan(1000)
    expect([none.status, (await none.json() as { error: { code: string } }).error.code]).toEqual([404, 'RTW_NO_RESPONDER'])
    const bad = await rawRequest({ port: target().httpPort, method: 'POST', path: '/api/echo/a%2Fb', body: 'x' })
    expect([bad.status, bad.json().error.code]).toEqual([400, 'RTW_BAD_TARGET'])
    const ff = await post('/api/echo/c/ff?timeout=0', 'x', 'text/plain')
    expect(ff.status).toBe(202)
    expect(await ff.json()).toMatchObject({ status: 'accepted' })
  })

  it('contract: 504 RTW_REPLY_TIMEOUT near the requested timeout', async () => {
    const held = await Responder.start(target().mqttUrl, '$req/contract-held/#')
    try {
      const start = performance.now()
      const res = await post('/api/contract-held/x?timeout=300ms', 'x', 'text/plain')
      const ms = performance.now() - start
      expect([res.status, (await res.json() as { error: { code: string } }).error.code]).toEqual([504, 'RTW_REPLY_TIMEOUT'])
      expect(ms).toBeGreaterThanOrEqual(295)
      expect(ms).toBeLessThan(2000)
      expect(held.requests.length).toBe(1)
    } finally {
      await held.close()
    }
  })

  it('contract: an MQTT-native caller gets its reply in its own inbox', async () => {
    const clientId = `contract-${randomBytes(4).toString('hex')}`
    const caller = await connectClient(target().mqttUrl, { clientId })
    try {
      await subscribe(caller, `$inbox/${clientId}/#`)
      const got = nextMessage(caller)
      await caller.publishAsync('$req/echo/c/mqtt', JSON.stringify({ id: 'k', replyTo: `$inbox/${clientId}/r`, body: 'over mqtt' }), { qos: 1 })
      expect(JSON.parse((await got).payload.toString())).toMatchObject({ id: 'k', status: 200, body: 'over mqtt' })
    } finally {
      await caller.endAsync()
    }
  })
}
