// The command line of the gateway: `--flag value` and `--flag=value` for every
// config key, `--config FILE`, and the command flags main.ts acts on. A
// mistyped flag is refused with the closest known one, never ignored.
import { COMMAND_FLAGS, CONFIG_FIELDS, ConfigError, type ConfigKey } from './config.js'

// Read when called, not at load: config.ts imports this file before it defines CONFIG_FIELDS.
const keys = (): ConfigKey[] => Object.keys(CONFIG_FIELDS) as ConfigKey[]

/** The flag closest to a mistyped one, when it is close enough to be what was meant. */
function suggest (name: string): string {
  const distance = (a: string, b: string): number => {
    let prev = Array.from({ length: b.length + 1 }, (_v, i) => i)
    for (let i = 1; i <= a.length; i++) {
      const row = [i]
      for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = row
    }
    return prev[b.length] as number
  }
  const known = ['--config', ...COMMAND_FLAGS, ...keys().map(k => CONFIG_FIELDS[k].flag)]
  let best = ''
  let bestD = Infinity
  for (const f of known) {
    const d = distance(name, f)
    if (d < bestD) { best = f; bestD = d }
  }
  return bestD <= 3 ? ` (did you mean ${best}?)` : ''
}

/** Splits argv into known flags; `--config FILE` names the file source. Unknown flags are errors. */
export function parseArgv (argv: string[]): { file?: string, values: Map<ConfigKey, string>, flags: Set<string> } {
  const values = new Map<ConfigKey, string>()
  const flags = new Set<string>()
  let file: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const take = (): string => {
      if (eq !== -1) return arg.slice(eq + 1)
      const next = argv[++i]
      if (next === undefined) throw new ConfigError(`command line: ${name} needs a value`)
      return next
    }
    if (name === '--config') { file = take(); continue }
    const key = keys().find(k => CONFIG_FIELDS[k].flag === name)
    if (key !== undefined) {
      // A boolean flag may stand alone: `--allow-anonymous`.
      const bare = CONFIG_FIELDS[key].kind === 'bool' && eq === -1 && (argv[i + 1] === undefined || argv[i + 1]?.startsWith('-') === true)
      values.set(key, bare ? 'true' : take())
      continue
    }
    if ((COMMAND_FLAGS as readonly string[]).includes(arg)) { flags.add(arg); continue }
    // Named, so that `--http-prot 9000` says which flag is wrong rather than "unknown argument 9000".
    if (name.startsWith('-')) throw new ConfigError(`command line: unknown flag ${name}${suggest(name)}; --help lists them`)
    throw new ConfigError(`command line: unexpected argument ${JSON.stringify(arg)}; flags take the form --name value or --name=value`)
  }
  return { file, values, flags }
}

