// Where one `npm start` keeps its private pm2 daemon: per checkout and per
// HTTP address, so that two starts never share (and take over) a daemon.
import { join } from 'node:path'
import type { Config } from '../config.js'

export function pm2Home (root: string, config: Pick<Config, 'host' | 'httpPort'>): string {
  return join(root, '.pm2', `${config.host.replace(/[^A-Za-z0-9.-]/g, '_')}-${config.httpPort}`)
}
