// Builds the browser client: one minified ESM bundle with esbuild, and type
// declarations with tsc. Prints the bundle's minified and gzipped sizes.
//   node web-client/build.mjs           build
//   node web-client/build.mjs --sizes   also list what each source file adds to the bundle
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, 'dist', 'realtime-web.js')

const result = await build({
  entryPoints: [join(here, 'src', 'index.ts')],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning'
})

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' })
writeFileSync(join(here, 'dist', 'realtime-web.d.ts'), "export * from './types/index.js'\n")

const code = readFileSync(out)
const kb = n => (n / 1024).toFixed(1) + ' KB'
// Precompressed once here, so the gateway sends these bytes as they are (@fastify/static's preCompressed).
for (const file of [out, out + '.map']) {
  const bytes = readFileSync(file)
  writeFileSync(file + '.gz', gzipSync(bytes, { level: 9 }))
  writeFileSync(file + '.br', brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
}
console.log(`web-client: ${out.slice(here.length - 'web-client'.length)} ${kb(code.length)} minified, ${kb(gzipSync(code, { level: 9 }).length)} gzipped`)

if (process.argv.includes('--sizes')) {
  const inputs = Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs).find(k => k.endsWith('.js'))].inputs)
  for (const [file, { bytesInOutput }] of inputs.sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput)) {
    console.log(`  ${String(bytesInOutput).padStart(6)} B  ${file}`)
  }
}
