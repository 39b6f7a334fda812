// Who may read what in `$SYS` [P-12.9]. With auth on, `$SYS` follows the
// subscribe grants like any topic (a `#` grant does not reach it
// [MQTT-4.7.2-1]). Without auth, a reader on a loopback address sees all of
// it, and any other reader only the counters under `$SYS/broker/…`,
// `$SYS/rtw/…` and a cluster's `$SYS/brokers/<node>/…` [P-12.10]: Aedes's per-client topics (`$SYS/<broker>/new/clients`,
// `…/new/subscribes`, …) name client ids, which would help take them over.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Client, Stage } from '../../broker/broker.js'
import { isLoopbackAddress } from '../../core/hosts.js'
import { authEnabled } from '../config.js'
import { addressOfClient } from './sessions.js'

/** The `$SYS` subtrees that carry no client ids, for any reader. */
const PUBLIC_SYS = ['$SYS/broker/', '$SYS/rtw/', '$SYS/brokers/']

async function sysVisibilityPlugin (app: FastifyInstance): Promise<void> {
  if (authEnabled(app.config)) return
  const local = new WeakMap<Client, boolean>()
  app.stages.sys = {
    name: 'sys',
    deliver (client, packet) {
      const t = packet.topic
      if (t.charCodeAt(0) !== 36 || !(t.startsWith('$SYS/') || t === '$SYS')) return true
      let loopback = local.get(client)
      if (loopback === undefined) {
        loopback = isLoopbackAddress(addressOfClient(client))
        local.set(client, loopback)
      }
      return loopback || PUBLIC_SYS.some(p => t.startsWith(p))
    }
  } satisfies Stage
}

export default fp(sysVisibilityPlugin, { name: 'rtw-sys-visibility', dependencies: ['rtw-broker', 'rtw-limits', 'rtw-sessions'] })
