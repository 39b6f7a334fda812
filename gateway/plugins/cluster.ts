// Joins the node to its cluster when redisUrl is set (docs/CLUSTER.md): the
// Redis connections, the node's own id (gateway/cluster/identity.ts), claimed
// once no live node holds it [P-5.1], and the ClusterNode
// that the broker plugin hands to the bridge. Registered before the broker,
// which routes and keeps its state through the same connections.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { RedisLink, redactUrl } from '../cluster/redis-link.js'
import { ClusterNode } from '../cluster/node.js'
import { nodeIdentity } from '../cluster/identity.js'
import { LogLimiter } from '../log-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This node in its cluster; null without redisUrl. */
    cluster: ClusterNode | null
  }
}

async function clusterPlugin (app: FastifyInstance): Promise<void> {
  const url = app.config.redisUrl
  if (url === '') {
    app.decorate('cluster', null)
    return
  }
  const limited = new LogLimiter(app.log)
  const link = new RedisLink({ url, onError: (name, err) => limited.warn(`redis-${name}`, `Redis (${name}): ${err.message}`) })
  await link.connect()
  link.on('down', () => app.log.warn('Redis unreachable: serving this node\'s own clients only (docs/CLUSTER.md, "Redis down")'))
  link.on('up', () => app.log.info('Redis reachable again'))
  const identity = nodeIdentity(app.config.nodeId, app.config.httpPort)
  const node = await ClusterNode.join(link, identity).catch(async (err: unknown) => { await link.close(); throw err })
  node.onIdConflict = holder => limited.warn('node-id-conflict', `node id ${identity.id} is also claimed by ${holder}: replies may reach the wrong node; give each node its own RTW_NODE_ID`)
  app.log.info(`cluster node ${node.id} (${identity.name}, epoch ${identity.epoch}) joined through ${redactUrl(url)}` +
    (identity.stable ? '' : '; HTTP port 0 and no RTW_NODE_ID: a restart will be a new node'))
  app.decorate('cluster', node)
  // The broker plugin closes it, after its Aedes: that closes the routing connections it shares.
}

export default fp(clusterPlugin, { name: 'rtw-cluster' })
