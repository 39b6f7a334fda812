// `npm start`: the gateway and the echo server under pm2-runtime, as one
// foreground command that a person can start twice and stop with Ctrl-C.
//
// - The config is checked here first: a bad value stops `npm start` at once,
//   with its message and exit code 78, instead of pm2 restarting into it.
// - Each start gets its own pm2 daemon (PM2_HOME = .pm2/<host>-<httpPort> in
//   the checkout). pm2-runtime joins whatever daemon runs in its PM2_HOME, so a
//   shared one let a second start take over the first one's apps and hand them
//   its environment. A start whose ports or daemon are in use says so and exits 78.
// - pm2-runtime runs in a process group of its own, so Ctrl-C reaches only
//   this process, which stops things in order: the gateway drains first while
//   the echo server still answers, then pm2 stops the rest.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CONFIG_FIELDS, ConfigError, EXIT_CONFIG, configTable, loadConfig, type Config, type ConfigKey, type Sources } from '../config.js'
import { printConfig } from '../config-print.js'
import { projectRoot } from '../plugins/static.js'
import { pm2Home } from './pm2-home.js'

const GATEWAY = 'rtw-gateway'

function fail (message: string, code = EXIT_CONFIG): never {
  console.error(message)
  process.exit(code)
}

/** Resolves when nothing listens on host:port (checked by listening on it for a moment). */
async function portFree (host: string, port: number): Promise<boolean> {
  if (port === 0) return true
  return await new Promise(resolve => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)))
  })
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readPid (file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** The pids of the gateway's instances, from the pid files pm2 keeps in its home. */
function gatewayPids (home: string): number[] {
  const dir = join(home, 'pids')
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter(f => f.startsWith(`${GATEWAY}-`) && f.endsWith('.pid'))
    .map(f => readPid(join(dir, f))).filter((p): p is number => p !== undefined && alive(p))
}

/**
 * What the apps should see: the caller's environment, plus every value that came
 * from a flag or the config file as its RTW_* variable, so the echo server finds
 * the gateway's host and MQTT port wherever they were set.
 */
function appEnv (config: Config, sources: Sources, home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: home }
  for (const key of Object.keys(CONFIG_FIELDS) as ConfigKey[]) {
    if (sources[key] !== 'default' && !sources[key].startsWith('env ')) env[CONFIG_FIELDS[key].env] = String(config[key])
  }
  return env
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('Usage: npm start [-- --print-config] [-- --flag value …]\n\nThe gateway and the echo server under pm2-runtime; Ctrl-C drains and stops both.\n\n' + configTable())
    return
  }
  let loaded
  try {
    loaded = loadConfig({ env: process.env, argv })
  } catch (err) {
    if (err instanceof ConfigError) fail(`${err.code}: ${err.message}`)
    throw err
  }
  const { config, sources, flags } = loaded
  if (flags.has('--print-config')) {
    console.log(printConfig(config, sources))
    return
  }
  const root = projectRoot()
  const home = pm2Home(root, config)
  const daemon = readPid(join(home, 'pm2.pid'))
  if (daemon !== undefined && alive(daemon)) {
    fail(`RTW_ALREADY_RUNNING: another npm start (pm2 daemon pid ${daemon}) runs this checkout on ${config.host}:${config.httpPort}; stop it with Ctrl-C in its terminal, or choose other ports with RTW_HTTP_PORT and RTW_MQTT_PORT`)
  }
  // With metricsPort, each gateway instance listens on metricsPort + its index (plugins/metrics-port.ts).
  const instances = Math.max(1, Math.floor(Number(process.env.RTW_INSTANCES ?? '') || 1))
  const metricsPorts = config.metricsPort === 0 ? [] : Array.from({ length: instances }, (_, i) => ['metrics', config.metricsPort + i] as const)
  for (const [what, port] of [['HTTP', config.httpPort], ['MQTT', config.mqttPort], ...metricsPorts] as const) {
    if (!(await portFree(config.host, port))) {
      fail(`RTW_PORT_IN_USE: the ${what} port ${config.host}:${port} is in use (another gateway or program holds it); choose other ports with RTW_HTTP_PORT, RTW_MQTT_PORT${metricsPorts.length > 0 ? ' and RTW_METRICS_PORT' : ''}, e.g. RTW_HTTP_PORT=9080 RTW_MQTT_PORT=9883 npm start`)
    }
  }

  const runtime = createRequire(import.meta.url).resolve('pm2/bin/pm2-runtime')
  console.log(`npm start: pm2 home ${home} (\`npm run pm2 -- ls\` with the same ports lists its apps)`)
  const guard = join(dirname(fileURLToPath(import.meta.url)), 'runtime-guard.js')
  const child = spawn(process.execPath, [guard, runtime, 'start', join(root, 'ecosystem.config.js')], {
    cwd: root,
    env: appEnv(config, sources, home),
    // A group of its own: Ctrl-C in the terminal reaches only this process (see stop below).
    detached: true,
    // stdin is the guard's lifeline: it closes when this process dies, however it dies.
    stdio: ['pipe', 'pipe', 'pipe']
  })
  supervise(child, home, config)
}

/** Relays pm2-runtime's output, watches it for a gateway that cannot start, and stops everything in order on a signal. */
function supervise (child: ChildProcess, home: string, config: Config): void {
  let stopping: Promise<void> | undefined
  let exitCode = 0
  const stop = (signal: NodeJS.Signals, code: number): Promise<void> => {
    exitCode = Math.max(exitCode, code)
    stopping ??= (async () => {
      // 1. The gateway drains while the echo server still answers [P-5.6]; it exits 0, which pm2 does not restart.
      const pids = gatewayPids(home)
      for (const pid of pids) { try { process.kill(pid, signal) } catch { /* already gone */ } }
      const deadline = Date.now() + config.shutdownGraceMs + 5_000
      while (pids.some(alive) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
      // 2. Then pm2-runtime stops what is left (the echo server) and its daemon, and exits.
      if (child.exitCode === null && child.pid !== undefined) { try { process.kill(child.pid, 'SIGINT') } catch { /* gone */ } }
    })()
    return stopping
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => { void stop(signal, 0) })

  // A gateway that exits with EX_CONFIG (bad config, port in use) or keeps crashing cannot be helped by pm2's restarts.
  const fatal = new RegExp(`App \\[${GATEWAY}:\\d+\\] exited with code \\[${EXIT_CONFIG}\\]|${GATEWAY}.*too many unstable restarts`)
  const relay = (from: NodeJS.ReadableStream, to: NodeJS.WritableStream): void => {
    let partial = ''
    from.on('data', (chunk: Buffer) => {
      to.write(chunk)
      const text = partial + chunk.toString('utf8')
      const lines = text.split('\n')
      partial = lines.pop() ?? ''
      if (lines.some(line => fatal.test(line))) void stop('SIGTERM', 1)
    })
  }
  if (child.stdout !== null) relay(child.stdout, process.stdout)
  if (child.stderr !== null) relay(child.stderr, process.stderr)
  child.on('exit', (code, signal) => {
    process.exit(exitCode !== 0 ? exitCode : code ?? (signal === null ? 0 : 1))
  })
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
