// The reference: a bare Fastify route that echoes the raw body with its
// content type. Started by bench/run.ts in its own process; prints its port.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
// Raw bytes, as the gateway takes them (docs/ARCHITECTURE.md "Pitfalls" 4).
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
app.post('/echo', (req, reply) => {
  const ct = req.headers['content-type']
  if (ct !== undefined) reply.header('content-type', ct)
  reply.send(req.body as Buffer)
})

const address = await app.listen({ port: Number(process.env.BENCH_PORT ?? 0), host: '127.0.0.1' })
console.log(`bare-server listening on ${address}`)

const stop = (): void => { app.close().finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
