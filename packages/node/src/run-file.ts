import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { NotRunningError } from './errors.js'
import { writeWhole } from './write-whole.js'

export const RUN_FILE = 'run.json'

/** What a running node tells its clients: written when ready, removed on a clean stop. */
export interface RunInfo {
  peerId: string
  did: string | null
  multiaddrs: string[]
  api: { url: string, token: string }
  pid: number
}

export function runFilePath (home: string): string {
  return join(home, RUN_FILE)
}

/**
 * Writes run.json readable by its owner only (mode 0600): into a new temporary file of that mode,
 * renamed over the old one, so a run.json left with a wider mode (0644) is replaced rather than
 * rewritten with the new token in it, and readers never see half a file.
 */
export async function writeRunFile (home: string, info: RunInfo): Promise<void> {
  await writeWhole(runFilePath(home), JSON.stringify(info, null, 2) + '\n', { mode: 0o600, replace: true })
}

export async function removeRunFile (home: string): Promise<void> {
  await rm(runFilePath(home), { force: true })
}

/** Reads run.json, or undefined when there is none (or it is unreadable). */
export async function readRunFile (home: string): Promise<RunInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(runFilePath(home), 'utf8'))
    if (typeof info?.pid !== 'number' || typeof info?.api?.url !== 'string') return undefined
    return info as RunInfo
  } catch {
    return undefined
  }
}

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

/** The run.json of a live node on `home`, or a NotRunningError that says what to do. */
export async function requireRunning (home: string): Promise<RunInfo> {
  const info = await readRunFile(home)
  if (info == null) {
    const text = await readFile(runFilePath(home), 'utf8').catch(() => undefined)
    if (text != null) throw new NotRunningError(`${runFilePath(home)} is not a valid run file (no pid or API address); if no node runs on ${home}, delete it and start one`)
  }
  if (info == null) throw new NotRunningError(`no node is running on ${home} (no run.json); start one with \`aistack start --home ${home}\``)
  if (!isAlive(info.pid)) throw new NotRunningError(`the node on ${home} is not running (process ${info.pid} is gone; run.json is stale)`)
  return info
}
