// The HTTP API's description at /docs: openapi.yaml as it is in the repository
// (@fastify/swagger's static mode), browsable with Swagger UI, and as
// /docs/json and /docs/yaml. test/integration/docs.test.ts keeps the file and the
// routes the app registers in step.
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { join } from 'node:path'
import { projectRoot } from './static.js'

export const DOCS_PREFIX = '/docs'

export default async function docsPlugin (app: FastifyInstance): Promise<void> {
  const root = projectRoot()
  await app.register(swagger, { mode: 'static', specification: { path: join(root, 'openapi.yaml'), baseDir: root } })
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { deepLinking: true, tryItOutEnabled: true } })
}
