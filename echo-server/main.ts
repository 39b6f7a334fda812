// The echo server: an MQTT client that answers $req/echo/# and the original
// project's $req/realtimeweb/#. It reconnects when the broker restarts.
// It runs on ./mqtt-client.ts rather than MQTT.js, which cost most of its CPU per request.
import { echo } from './echo.js'
import { MqttClient } from './mqtt-client.js'

const host = process.env.RTW_HOST === undefined || process.env.RTW_HOST === '0.0.0.0' ? '127.0.0.1' : process.env.RTW_HOST
// A comma list of broker URLs reconnects to the next one when a node goes away (a cluster).
const url = process.env.ECHO_MQTT_URL ?? `mqtt://${host}:${process.env.RTW_MQTT_PORT ?? '1883'}`
const replyQos = process.env.ECHO_REPLY_QOS === '1' ? 1 : 0
const topics = (process.env.ECHO_TOPICS ?? '$req/echo/#,$req/realtimeweb/#').split(',')
// Pretend each request takes this long: for trying timeouts and drains by hand.
const delayMs = Number(process.env.ECHO_DELAY_MS ?? '0')
if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
  console.error(`echo-server: ECHO_DELAY_MS must be a whole number of milliseconds (got ${process.env.ECHO_DELAY_MS ?? ''})`)
  process.exit(1)
}

let client: MqttClient
try {
  client = new MqttClient({
    url,
    clientId: `echo-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...(process.env.ECHO_TOKEN === undefined ? {} : { username: 'echo', password: process.env.ECHO_TOKEN }),
    subscriptions: topics,
    keepalive: 60,
    reconnectPeriodMs: 500,
    connectTimeoutMs: 5_000,
    onMessage: (topic, payload) => {
      const out = echo(topic, payload)
      if (out === null) return
      if (delayMs === 0) client.publish(out.topic, out.payload, replyQos)
      else setTimeout(() => client.publish(out.topic, out.payload, replyQos), delayMs)
    },
    onSubscribe: (topic, granted) => {
      if (granted) console.log(`echo-server: connected to ${url}, answering ${topic}`)
      else console.error(`echo-server: not allowed to answer ${topic}`)
    },
    onLog: line => console.error(`echo-server: ${line}`)
  })
} catch (err) {
  // A bad URL or scheme: nothing to retry.
  console.error(`echo-server: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  void client.end().then(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
