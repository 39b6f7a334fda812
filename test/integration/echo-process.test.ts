// The echo server as its own process (dist/echo-server/main.js): it answers
// $req/echo/# and $req/realtimeweb/#, and reconnects when the gateway restarts.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { startProcess, type TestProcess } from '../helpers/processes.js'
import { restContract } from '../helpers/contract.js'
import { waitFor } from '../helpers/wait.js'

const ECHO = 'dist/echo-server/main.js'

async function echoReady (gw: TestGateway): Promise<void> {
  await waitFor(() => gw.app.broker.subscriptions.hasMatch('$req/echo/x') && gw.app.broker.subscriptions.hasMatch('$req/realtimeweb/x'),
    { timeoutMs: 15_000, what: 'the echo server to subscribe' })
}

async function roundTrip (gw: TestGateway, body: BodyInit, contentType: string, service = 'echo'): Promise<Response> {
  return await fetch(`${gw.httpUrl}/api/${service}/p/q?x=y&timeout=10`, { method: 'POST', body, headers: { 'content-type': contentType } })
}

describe('echo server process', () => {
  let gw: TestGateway
  let echo: TestProcess

  beforeAll(async () => {
    gw = await startGateway()
    echo = startProcess('node', [ECHO], { env: { RTW_HOST: '127.0.0.1', RTW_MQTT_PORT: String(gw.mqttPort), ECHO_MQTT_URL: undefined } })
    await echoReady(gw)
  })
  afterAll(async () => {
    await echo?.killGroup()
    await gw?.close()
  })

  restContract(() => gw)

  it('echoes JSON, text and binary bodies with their content type', async () => {
    const json = await roundTrip(gw, '{"a":[1,2,3]}', 'application/json')
    expect(json.status).toBe(200)
    expect(json.headers.get('content-type')).toBe('application/json')
    expect(json.headers.get('x-echo-method')).toBe('POST')
    expect(json.headers.get('x-echo-path')).toBe('/p/q')
    expect(json.headers.get('x-echo-query')).toBe('x=y')
    expect(await json.text()).toBe('{"a":[1,2,3]}')

    const text = await roundTrip(gw, 'grüße\n', 'text/plain; charset=utf-8')
    expect(await text.text()).toBe('grüße\n')

    const bytes = Buffer.concat([Buffer.from([0xff, 0xc0, 0x80]), randomBytes(10_000)])
    const bin = await roundTrip(gw, bytes, 'application/octet-stream')
    expect(bin.headers.get('content-type')).toBe('application/octet-stream')
    expect(Buffer.from(await bin.arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('answers the original project\'s service, realtimeweb', async () => {
    const res = await roundTrip(gw, 'legacy', 'text/plain', 'realtimeweb')
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('legacy')
  })

  it('does not answer fire-and-forget requests (nothing is dropped as unknown)', async () => {
    const res = await fetch(`${gw.httpUrl}/api/echo/ff?timeout=0`, { method: 'POST', body: 'x' })
    expect(res.status).toBe(202)
    // A normal request after it has gone round, so a reply to the first would have been counted by now.
    expect((await roundTrip(gw, 'after', 'text/plain')).status).toBe(200)
    const stats = await (await fetch(`${gw.httpUrl}/stats`)).json() as { dropped: Record<string, number> }
    expect(stats.dropped.unknown).toBe(0)
  })

  it('reconnects when the gateway restarts on the same MQTT port', async () => {
    const mqttPort = gw.mqttPort
    await gw.close()
    gw = await startGateway({ mqttPort })
    expect(gw.mqttPort).toBe(mqttPort)
    await echoReady(gw)
    const res = await roundTrip(gw, 'after restart', 'text/plain')
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('after restart')
    expect(echo.exited).toBeUndefined()
  })

  it('exits 0 on SIGTERM and leaves the broker, so the service is gone (404)', async () => {
    echo.signal('SIGTERM')
    const exit = await echo.waitForExit()
    expect(exit).toEqual({ code: 0, signal: null })
    await waitFor(() => !gw.app.broker.subscriptions.hasMatch('$req/echo/x'), { what: 'the echo subscription to go' })
    const res = await roundTrip(gw, 'x', 'text/plain')
    expect(res.status).toBe(404)
  })
})
