import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams, SpawnOptionsWithoutStdio } from 'node:child_process'

/**
 * Handler processes run each in a process group of their own (`setsid` through
 * `spawn({ detached: true })`), so that ending a handler ends everything it started:
 * `sh -c 'sleep 40; cat'` leaves no `sleep` behind. A group is ended with SIGTERM to
 * `-pgid`, then SIGKILL after a grace period (POSIX `kill(2)` with a negative pid).
 */

/** How long a group has between SIGTERM and SIGKILL, in ms */
export const KILL_GRACE_MS = 2000

/** Groups of handler processes that have not been reaped, by process group id (the leader's pid) */
const live = new Map<number, ProcessGroup>()

function signalGroup (pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    // ESRCH: the group is gone
    return false
  }
}

/** One spawned handler process and the group it leads. */
export class ProcessGroup {
  readonly child: ChildProcessWithoutNullStreams
  /** The process group id; undefined when the command could not be started */
  readonly pgid: number | undefined
  /** Resolves once the group has been ended (or has ended by itself) */
  readonly ended: Promise<void>
  private endedResolve!: () => void
  private killTimer?: ReturnType<typeof setTimeout>
  private exited = false
  private stopping?: Promise<void>

  constructor (command: string, args: string[], options: SpawnOptionsWithoutStdio) {
    this.child = spawn(command, args, { ...options, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    this.pgid = this.child.pid
    this.ended = new Promise(resolve => { this.endedResolve = resolve })
    if (this.pgid == null) {
      this.exited = true
      this.endedResolve()
      return
    }
    live.set(this.pgid, this)
    this.child.once('exit', () => {
      this.exited = true
      // the leader is gone; what it left in its group (a backgrounded process) goes with it
      if (this.pgid != null) signalGroup(this.pgid, 'SIGKILL')
      this.finish()
    })
    this.child.once('error', () => { this.finish() })
  }

  /**
   * Ends the whole group: SIGTERM, then SIGKILL after `graceMs` if the leader still runs.
   * Closes the pipes once the leader has exited, so that a process that escaped the group
   * (by `setsid` of its own) and holds them open cannot keep the handler waiting.
   */
  async kill (graceMs = KILL_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      if (this.pgid == null) return
      if (!this.exited) {
        signalGroup(this.pgid, 'SIGTERM')
        this.killTimer = setTimeout(() => { if (this.pgid != null) signalGroup(this.pgid, 'SIGKILL') }, Math.max(0, graceMs))
        this.killTimer.unref?.()
      } else {
        signalGroup(this.pgid, 'SIGKILL')
      }
      await this.ended
      this.child.stdout.destroy()
      this.child.stderr.destroy()
      this.child.stdin.destroy()
    })()
    return this.stopping
  }

  /** SIGKILL to the group at once, without waiting (used when the process exits) */
  killNow (): void {
    if (this.pgid != null) signalGroup(this.pgid, 'SIGKILL')
  }

  private finish (): void {
    clearTimeout(this.killTimer)
    if (this.pgid != null) live.delete(this.pgid)
    this.endedResolve()
  }
}

/** Number of handler process groups not yet ended */
export function liveProcessGroups (): number {
  return live.size
}

/**
 * Ends every handler process group of this process (SIGTERM, SIGKILL after `graceMs`);
 * resolves when all leaders have exited. Called when the node stops.
 */
export async function killAllProcessGroups (graceMs = KILL_GRACE_MS): Promise<void> {
  await Promise.all([...live.values()].map(async g => g.kill(graceMs)))
}

// a node that exits without stopping (an uncaught error, process.exit) leaves no handler behind
process.once('exit', () => {
  for (const g of live.values()) g.killNow()
})
