// The echo service as a RabbitMQ worker, as the original project's echo.js was:
// it consumes the durable queue rtw.req.<service> (prefetch + manual acks) and
// answers with the same pure echo() the MQTT responder uses (docs/AMQP.md §3).
//
// Environment:
//   RTW_AMQP_URL          RabbitMQ URL (required)
//   ECHO_AMQP_SERVICES    comma list of queued services to serve (default "echo")
//   ECHO_AMQP_PREFETCH    unacked requests held at once (default 10)
//   ECHO_DELAY_MS         pretend each request takes this long (default 0)
//   ECHO_AMQP_LOG_IDS=1   print a line per request received and handled (for tests)
//   RTW_AMQP_RECONNECT_MAX_MS  longest wait between reconnect attempts (default 5000)
//   RTW_REDIS_URL         remember handled requests in Redis, shared by every worker (docs/AMQP.md §3.1)
//   RTW_WORKER_DATA_DIR   or in LevelDB in <dir>/worker, this worker's own (one process per directory)
//   RTW_WORKER_DEDUPE_TTL_MS   how long a handled request is remembered there (default 86400000, 24 h)
import { AmqpWorker } from '../net/amqp/worker.js'
import { openStateBackend } from '../net/store/open.js'
import type { KvStore, StoreBackend } from '../net/store/store.js'
import { echo } from './echo.js'

const url = process.env.RTW_AMQP_URL ?? ''
if (url === '') {
  console.error('amqp-worker: set RTW_AMQP_URL (e.g. amqp://guest:guest@127.0.0.1:5672)')
  process.exit(78)
}
const services = (process.env.ECHO_AMQP_SERVICES ?? 'echo').split(',').map(s => s.trim()).filter(s => s.length > 0)
const prefetch = Number(process.env.ECHO_AMQP_PREFETCH ?? '10')
const delayMs = Number(process.env.ECHO_DELAY_MS ?? '0')
const logIds = process.env.ECHO_AMQP_LOG_IDS === '1'
const reconnectMaxMs = Number(process.env.RTW_AMQP_RECONNECT_MAX_MS ?? '5000')
const redisUrl = process.env.RTW_REDIS_URL ?? ''
const dataDir = process.env.RTW_WORKER_DATA_DIR ?? ''
const dedupeTtlMs = Number(process.env.RTW_WORKER_DEDUPE_TTL_MS ?? '86400000')

// Durable dedupe only when asked for; the in-memory cache always runs.
let backend: StoreBackend | undefined
let dedupeStore: KvStore | undefined
if (redisUrl !== '' || dataDir !== '') {
  backend = await openStateBackend({ redisUrl, dataDir }, 'worker')
  dedupeStore = await backend.open('worker-dedupe', {
    ttlMs: Number.isSafeInteger(dedupeTtlMs) && dedupeTtlMs > 0 ? dedupeTtlMs : 86_400_000,
    maxEntries: 1_000_000,
    maxBytes: 256 * 1024 * 1024,
    // A cache: past its bounds the oldest entry goes, and only that request could then run twice.
    whenFull: 'evict-oldest'
  })
  console.log(`amqp-worker: dedupe store ${backend.kind}${backend.kind === 'level' ? ` in ${dataDir}/worker` : ''}`)
}

const worker = new AmqpWorker({
  url,
  services,
  prefetch: Number.isSafeInteger(prefetch) && prefetch > 0 ? prefetch : 10,
  name: `rtw-echo-worker pid ${process.pid}`,
  reconnectMaxMs: Number.isSafeInteger(reconnectMaxMs) && reconnectMaxMs >= 100 ? reconnectMaxMs : 5000,
  dedupeStore,
  log: { info: msg => console.log(`amqp-worker: ${msg}`), warn: msg => console.error(`amqp-worker: ${msg}`) },
  async handle (_request, raw, topic) {
    if (delayMs > 0) await new Promise(resolve => setTimeout(resolve, delayMs))
    return echo(topic, raw)?.payload ?? null
  },
  onEvent: logIds
    ? e => {
      if (e.kind === 'processed' || e.kind === 'received') console.log(`${e.kind} ${e.id} redelivered=${e.redelivered}`)
      else if (e.kind === 'duplicate' || e.kind === 'expired') console.log(`${e.kind} ${e.id}`)
    }
    : undefined
})
worker.conn.on('up', () => console.log(`amqp-worker: consuming ${services.map(s => `rtw.req.${s}`).join(', ')} (prefetch ${prefetch})`))
worker.start()

const stop = (): void => {
  worker.close().then(async () => { await backend?.close() }).then(() => process.exit(0), () => process.exit(1))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
