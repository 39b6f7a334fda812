// `npm run pm2 -- <pm2 arguments>`: the pm2 CLI pointed at the daemon of the
// `npm start` that runs with the same RTW_HOST / RTW_HTTP_PORT (or config
// file), e.g. `npm run pm2 -- stop rtw-echo`, `npm run pm2 -- logs`.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { ConfigError, EXIT_CONFIG, loadConfig } from '../config.js'
import { projectRoot } from '../plugins/static.js'
import { pm2Home } from './pm2-home.js'

try {
  const { config } = loadConfig({ env: process.env })
  const pm2 = createRequire(import.meta.url).resolve('pm2/bin/pm2')
  const run = spawnSync(process.execPath, [pm2, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, PM2_HOME: pm2Home(projectRoot(), config) } })
  process.exit(run.status ?? 1)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(`${err.code}: ${err.message}`)
  process.exit(EXIT_CONFIG)
}
