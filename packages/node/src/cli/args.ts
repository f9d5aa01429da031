import { parseArgs } from 'node:util'
import { UsageError } from '../errors.js'

export type OptionSpec = Record<string, { type: 'string' | 'boolean', multiple?: boolean, short?: string }>

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>
  positionals: string[]
}

/** `parseArgs` in strict mode, with its errors turned into one-line usage errors. */
export function parse (command: string, args: string[], options: OptionSpec, { positionals = 0 } = {}): Parsed {
  let parsed: Parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals > 0, strict: true }) as Parsed
  } catch (err: any) {
    const message = String(err.message ?? err).split('\n')[0].replace(/\. To specify a positional argument.*$/, '')
    throw new UsageError(`${command}: ${message}`)
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`${command}: unexpected argument "${parsed.positionals[positionals]}"`)
  return parsed
}

export function parseInteger (value: string, what: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${what}: "${value}" is not a whole number`)
  const n = Number(value)
  if (n < min || n > max) throw new UsageError(`${what}: ${n} is out of range (${min}-${max})`)
  return n
}
