// Joins the node to its cluster when redisUrl is set (docs/CLUSTER.md): the
// Redis connections, a node id no live node holds [P-5.1], and the ClusterNode
// that the broker plugin hands to the bridge. Registered before the broker,
// which routes and keeps its state through the same connections.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { RedisLink, redactUrl } from '../cluster/redis-link.js'
import { ClusterNode } from '../cluster/node.js'
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
  const node = await ClusterNode.join(link)
  app.log.info(`cluster node ${node.id} joined through ${redactUrl(url)}`)
  app.decorate('cluster', node)
  // The broker plugin closes it, after its Aedes: that closes the routing connections it shares.
}

export default fp(clusterPlugin, { name: 'rtw-cluster' })
