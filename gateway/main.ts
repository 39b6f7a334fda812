// The only place that listens: load config, build the app, listen, drain on signals.
import { buildApp, consoleLogger } from './app.js'
import { ConfigError, EXIT_CONFIG, configTable, loadConfig } from './config.js'
import { printConfig } from './config-print.js'
import { drainAndClose } from './shutdown.js'
import { RedisUnreachableError } from './cluster/redis-link.js'
import { NodeIdTakenError } from './cluster/node.js'

/** EX_UNAVAILABLE (sysexits.h): a service the node needs is not there. pm2 restarts it, unlike EXIT_CONFIG. */
const EXIT_UNAVAILABLE = 69

async function main (): Promise<void> {
  // pm2's cluster mode forks each instance with the arguments pm2 itself was
  // started with (`start ecosystem.config.js`), which are not the gateway's:
  // there its configuration comes from the environment and the file only.
  const argv = process.env.exec_mode === 'cluster_mode' ? [] : process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('Usage: node dist/gateway/main.js [--config FILE] [--print-config] [--flag value …]\n\n' + configTable())
    return
  }
  const { config, flags, sources } = loadConfig({ env: process.env, argv })
  if (flags.has('--print-config')) {
    console.log(printConfig(config, sources))
    return
  }
  // Pretty logs when asked for, or by default on a terminal (never under pm2, whose output is a pipe).
  const pretty = sources.logPretty === 'default' ? process.stdout.isTTY === true : config.logPretty
  const app = await buildApp(config, { logger: consoleLogger(config, pretty) })
  // A burst of new HTTP connections (thousands of callers or SSE streams at once)
  // overflows Node's default accept queue of 511 while the loop is busy, and the
  // kernel then resets some of them; the kernel caps this at net.core.somaxconn.
  await app.listen({ port: config.httpPort, host: config.host, backlog: 4096 })
  const mqtt = await app.broker.listenTcp(config.mqttPort, config.host)
  // Each process's own metrics (metricsPort + its pm2 instance), for several instances behind one HTTP port.
  const metricsPort = await app.metricsListener?.listen(config.host)
  const http = app.server.address()
  const httpPort = typeof http === 'object' && http !== null ? http.port : config.httpPort
  const tls = config.tlsCertFile !== ''
  app.log.info(`RealTime-Web gateway ready: ${tls ? 'https' : 'http'}://${config.host}:${httpPort} (REST /api, MQTT over WebSocket ${config.wsPath}, dashboard /dashboard, API docs /docs), ${tls ? 'mqtts' : 'mqtt'}://${config.host}:${mqtt.port}${metricsPort === undefined ? '' : `, metrics http://${config.host}:${metricsPort}/metrics`}`)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    app.log.info(`${signal}: draining for up to ${config.shutdownGraceMs} ms`)
    drainAndClose(app, config.shutdownGraceMs).then(
      () => process.exit(0),
      err => { app.log.error({ err }, 'shutdown failed'); process.exit(1) }
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // pm2 on Windows and some supervisors send a "shutdown" message instead of a signal.
  process.on('message', msg => { if (msg === 'shutdown') stop('shutdown message') })
}

main().catch(err => {
  if (err instanceof ConfigError) {
    console.error(`${err.code}: ${err.message}`)
    process.exit(EXIT_CONFIG)
  }
  if (err instanceof NodeIdTakenError) {
    console.error(`${err.code}: ${err.message}`)
    process.exit(EXIT_CONFIG)
  }
  if (err instanceof RedisUnreachableError) {
    console.error(`${err.code}: ${err.message}; a cluster node does not start without its Redis: start Redis or correct RTW_REDIS_URL (docs/CLUSTER.md)`)
    process.exit(EXIT_UNAVAILABLE)
  }
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    const e = err as NodeJS.ErrnoException & { address?: string, port?: number }
    console.error(`RTW_PORT_IN_USE: cannot listen on ${e.address ?? '?'}:${e.port ?? '?'} (${code}): another gateway or program holds it; choose other ports with RTW_HTTP_PORT and RTW_MQTT_PORT`)
    process.exit(EXIT_CONFIG)
  }
  console.error(err)
  process.exit(1)
})
