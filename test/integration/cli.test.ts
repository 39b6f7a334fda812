// The gateway's command line as a newcomer meets it: a mistyped flag stops it
// with RTW_CONFIG_INVALID naming the flag, --print-config shows each value's
// source with secrets hidden, and `npm run token` runs the built CLI without
// compiling the project again.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startProcess } from '../helpers/processes.js'

const ROOT = new URL('../../', import.meta.url).pathname
const MAIN = join(ROOT, 'dist/gateway/main.js')

async function run (args: string[], env: Record<string, string> = {}, command = process.execPath): Promise<{ code: number | null, out: string }> {
  const p = startProcess(command, args, { env, cwd: ROOT })
  const exit = await p.waitForExit(20_000)
  return { code: exit.code, out: p.output() }
}

describe('node dist/gateway/main.js', () => {
  it.each([
    [['--bogus'], 'RTW_CONFIG_INVALID: command line: unknown flag --bogus; --help lists them'],
    [['--http-prot', '9000'], 'RTW_CONFIG_INVALID: command line: unknown flag --http-prot (did you mean --http-port?)'],
    [['serve'], 'RTW_CONFIG_INVALID: command line: unexpected argument "serve"']
  ])('refuses %j, naming it, with exit code 78 and before listening', async (args, message) => {
    const { code, out } = await run([MAIN, ...args, '--http-port', '0', '--mqtt-port', '0'])
    expect(code).toBe(78)
    expect(out).toContain(message)
    expect(out).not.toContain('listening')
  })

  it('--print-config prints every value with its source, secrets redacted, and exits 0', async () => {
    const { code, out } = await run([MAIN, '--print-config', '--mqtt-port', '1999'], { RTW_JWT_SECRET: 'sekrit-value', RTW_HTTP_PORT: '8181', RTW_AMQP_URL: 'amqp://u:hunter2@127.0.0.1:5672' })
    expect(code).toBe(0)
    expect(out).toMatch(/^httpPort +8181 +env RTW_HTTP_PORT$/m)
    expect(out).toMatch(/^mqttPort +1999 +flag --mqtt-port$/m)
    expect(out).toMatch(/^host +127\.0\.0\.1 +default$/m)
    expect(out).toMatch(/^amqpUrl +amqp:\/\/u:\(redacted\)@127\.0\.0\.1:5672 +env RTW_AMQP_URL$/m)
    expect(out).not.toContain('sekrit-value')
    expect(out).not.toContain('hunter2')
  })
})

describe('npm run token', () => {
  it('prints only a token, from the built CLI, without compiling the project again', async () => {
    const built = statSync(MAIN).mtimeMs
    const { code, out } = await run(['run', '-s', 'token', '--', '--sub', 'me', '--call', 'echo'], { RTW_JWT_SECRET: 'token-test' }, 'npm')
    expect(code).toBe(0)
    expect(out.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    expect(statSync(MAIN).mtimeMs).toBe(built)
  })
})

describe('RTW_LOG_PRETTY', () => {
  it('prints pino-pretty lines instead of JSON, and JSON when set to 0', async () => {
    const start = async (pretty: string): Promise<string> => {
      const p = startProcess(process.execPath, [MAIN, '--http-port', '0', '--mqtt-port', '0'], { env: { RTW_LOG_PRETTY: pretty }, cwd: ROOT })
      try {
        await p.waitForOutput(/gateway ready/, 20_000)
        return p.output()
      } finally {
        p.signal('SIGTERM')
        await p.waitForExit(20_000)
      }
    }
    const pretty = await start('1')
    expect(pretty).toMatch(/INFO.*RealTime-Web gateway ready/)
    expect(pretty).not.toMatch(/^\{"level"/m)
    const json = await start('0')
    expect(json).toMatch(/^\{"level":30,.*"msg":"RealTime-Web gateway ready/m)
  })
})
