// pm2 apps: the gateway and the echo server. Environment only, no logic.
// `npm start` runs this with pm2-runtime (foreground); `npx pm2 start ecosystem.config.js` daemonizes.
// RTW_* variables set when starting pm2 reach both apps (pm2 passes its environment through).
const shared = {
  exec_mode: 'fork',
  instances: 1,
  autorestart: true,
  // The gateway drains for up to RTW_SHUTDOWN_GRACE_MS (10 s) before exiting; give it room.
  kill_timeout: 15000,
  time: true
}

// pm2 loads this file with require(); under "type": "module" that yields the module
// namespace, so the apps are a named export.
export const apps = [
  {
    ...shared,
    name: 'rtw-gateway',
    script: 'dist/gateway/main.js'
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
