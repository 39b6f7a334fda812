// A private redis-server: Debian's package started on a free port with its own
// directory, under the same watchdog as the RabbitMQ node (scripts/rabbitmq-node.ts),
// so it never outlives the process that started it. Shared by the tests
// (test/helpers/redis.ts) and by `npm run bench`, so it lives outside test/.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { guarded, freePort } from './rabbitmq-node.js'

export const REDIS_SERVER = '/usr/bin/redis-server'

export function redisInstalled (): boolean {
  return existsSync(REDIS_SERVER)
}

export interface RedisNode {
  url: string
  port: number
  dir: string
  /** Crash: SIGKILL, no shutdown; resolves once it is gone. */
  kill: () => Promise<void>
  /** Starts it again on the same port and directory; resolves once it answers PING. */
  start: () => Promise<void>
  /** Stops it and deletes its directory. */
  close: () => Promise<void>
  output: () => string
}

/** True when a Redis at port answers PING with +PONG within timeoutMs. */
export async function answersPing (port: number, timeoutMs = 1_000): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect({ port, host: '127.0.0.1' })
    const timer = setTimeout(() => { socket.destroy(); resolve(false) }, timeoutMs)
    let got = ''
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1')
      if (got.includes('\r\n')) { clearTimeout(timer); socket.destroy(); resolve(got.startsWith('+PONG')) }
    })
    socket.once('error', () => { clearTimeout(timer); resolve(false) })
  })
}

export async function startRedisNode (opts: { appendOnly?: boolean } = {}): Promise<RedisNode> {
  if (!redisInstalled()) throw new Error(`${REDIS_SERVER} not found: apt-get install -y redis-server`)
  const dir = mkdtempSync(join(tmpdir(), 'rtw-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined
  let out = ''
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.appendOnly === true ? 'yes' : 'no', '--daemonize', 'no', '--logfile', '']
  const start = async (): Promise<void> => {
    const [cmd, cmdArgs] = guarded(REDIS_SERVER, args, dir)
    const c = spawn(cmd, cmdArgs, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    c.stdout?.on('data', (b: Buffer) => { out += b.toString('utf8') })
    c.stderr?.on('data', (b: Buffer) => { out += b.toString('utf8') })
    const deadline = Date.now() + 20_000
    while (!(await answersPing(port))) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${port}:\n${out}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  const kill = async (): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return
    const gone = new Promise(resolve => c.once('exit', resolve))
    try { process.kill(-c.pid, 'SIGKILL') } catch { /* already gone */ }
    await gone
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    kill,
    start,
    async close () {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
    output: () => out
  }
}
