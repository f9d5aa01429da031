import { homedir } from 'node:os'
import { join } from 'node:path'

/** The home directory: `--home`, else `$AISTACK_HOME`, else `~/.aistack`. */
export function resolveHome (home?: string): string {
  if (home != null && home !== '') return home
  const env = process.env.AISTACK_HOME
  if (env != null && env !== '') return env
  return join(homedir(), '.aistack')
}
