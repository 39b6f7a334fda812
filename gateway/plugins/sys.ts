// Publishes the $SYS topics (metrics/sys-topics.ts) every sysIntervalS,
// retained as Mosquitto publishes them, so a subscriber gets the latest values
// at once. They go through the broker like any other message: who may read
// them is decided by the subscribe rules of the $SYS namespace [P-12.7] and,
// with auth on, by the reader's subscribe grants ($SYS/# for all of them).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SysTopics } from '../metrics/sys-topics.js'
import { projectRoot } from './static.js'
import { LogLimiter } from '../log-limit.js'

function version (): string {
  try {
    return `RealTime-Web ${(JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version}`
  } catch {
    return 'RealTime-Web'
  }
}

async function sysPlugin (app: FastifyInstance): Promise<void> {
  const intervalS = app.config.sysIntervalS
  if (intervalS === 0) return
  const { broker, metrics } = app
  const topics = new SysTopics(version())
  const limited = new LogLimiter(app.log)
  let running = false
  const publishAll = async (): Promise<void> => {
    if (running || broker.aedes.closed) return
    running = true
    try {
      const { messages } = topics.next(await metrics.reading(broker.aedes.connectedClients))
      for (const [topic, payload] of messages) {
        broker.publish(topic, Buffer.from(payload), 0, true, err => { if (err) limited.warn('sys-publish', `${topic}: ${err.message}`) })
      }
    } finally {
      running = false
    }
  }
  let timer: NodeJS.Timeout | undefined
  // The first set once the gateway is ready, then every interval.
  app.addHook('onReady', async () => {
    await publishAll()
    timer = setInterval(() => { void publishAll() }, intervalS * 1000)
    timer.unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })
}

export default fp(sysPlugin, { name: 'rtw-sys', dependencies: ['rtw-broker', 'rtw-metrics'] })
