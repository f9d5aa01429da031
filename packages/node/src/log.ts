import { enable } from '@libp2p/logger'
import type { LogLevel } from './config.js'

const ORDER: LogLevel[] = ['error', 'warn', 'info', 'debug']

export interface Log {
  error: (message: string) => void
  warn: (message: string) => void
  info: (message: string) => void
  debug: (message: string) => void
}

/** A leveled logger on stderr (stdout is kept for output meant for people or programs). */
export function createLog (level: LogLevel, { json = false } = {}): Log {
  const limit = ORDER.indexOf(level)
  // libp2p's own logs (including the routine errors of closing streams) at the debug level only
  if (level === 'debug') enable('aistack*,libp2p:*')
  const write = (l: LogLevel) => (message: string): void => {
    if (ORDER.indexOf(l) > limit) return
    const line = json
      ? JSON.stringify({ time: new Date().toISOString(), level: l, message })
      : `${new Date().toISOString()} ${l.padEnd(5)} ${message}`
    process.stderr.write(line + '\n')
  }
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug') }
}
