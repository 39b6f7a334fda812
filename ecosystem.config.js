// pm2 apps: the gateway and the echo server. Environment only, no logic.
// `npm start` (gateway/cli/start.ts) runs this with pm2-runtime in the foreground,
// with a pm2 daemon of its own (PM2_HOME=.pm2/<host>-<httpPort>) and the
// environment it was started with; `npx pm2 start ecosystem.config.js` daemonizes.
const shared = {
  exec_mode: 'fork',
  instances: 1,
  autorestart: true,
  // 0 is a clean stop (npm start stops the gateway itself, drained, before pm2 stops
  // the rest); 78 (EX_CONFIG) a start that cannot succeed: neither is restarted.
  stop_exit_codes: [0, 78],
  // A crash within 5 s of starting counts as unstable; after 10 of those pm2 gives up.
  min_uptime: 5000,
  max_restarts: 10,
  // The gateway drains for up to RTW_SHUTDOWN_GRACE_MS (10 s) before exiting; give it room.
  kill_timeout: 15000,
  time: true
}

// RTW_INSTANCES=N runs N gateway processes in pm2 cluster mode, sharing the
// HTTP and MQTT ports, so that every core serves. They act as one gateway only
// as nodes of a cluster (docs/CLUSTER.md), so this needs RTW_REDIS_URL.
const instances = process.env.RTW_INSTANCES === undefined || process.env.RTW_INSTANCES === '' ? 1 : Number(process.env.RTW_INSTANCES)
if (!Number.isSafeInteger(instances) || instances < 1) throw new Error(`RTW_INSTANCES must be a whole number from 1 (got ${process.env.RTW_INSTANCES})`)
if (instances > 1 && !process.env.RTW_REDIS_URL) throw new Error(`RTW_INSTANCES=${instances} needs RTW_REDIS_URL: without a cluster each process would be a gateway of its own`)

// pm2 loads this file with require(); under "type": "module" that yields the module
// namespace, so the apps are a named export.
export const apps = [
  {
    ...shared,
    name: 'rtw-gateway',
    script: 'dist/gateway/main.js',
    ...(instances > 1 ? { exec_mode: 'cluster', instances } : {})
  },
  {
    ...shared,
    name: 'rtw-echo',
    script: 'dist/echo-server/main.js',
    kill_timeout: 5000
  },
  // The echo service as a RabbitMQ worker for queued services (docs/AMQP.md §3),
  // started only when RabbitMQ is configured: RTW_AMQP_URL=amqp://… RTW_QUEUED_SERVICES=echo npm start
  ...(process.env.RTW_AMQP_URL ? [{
    ...shared,
    name: 'rtw-echo-amqp',
    script: 'dist/echo-server/amqp-worker.js',
    kill_timeout: 5000
  }] : [])
]

export default { apps }
