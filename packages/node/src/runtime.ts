/**
 * How the node's process shares the machine's cores with V8's own threads.
 *
 * By default V8 helps its garbage collector with a pool of background threads
 * (4 per process, whatever the machine) and compiles optimized code on the
 * same threads. On a machine with few cores, beside the node's other threads
 * (the bulk lane's worker, libuv's pool) and other processes (the agent, other
 * nodes of a local testnet), these threads make the node's event loop wait
 * for a core: a thread the event loop wakes is placed on its core and runs
 * first, even while the other core is idle. Those waits are a large part of
 * the tail of a sembatch round trip, with or without bulk traffic
 * (docs/benchmarks.md, "Sembatch: the node's process").
 *
 * So the `aistack start` process runs V8 with `--single-threaded-gc` (the
 * command re-executes itself with it before it loads anything, keeping its
 * process id: `execForNode`, called by the CLI's `main`): each isolate collects its
 * garbage on its own thread, the bulk lane's worker at its own lower
 * priority. With that flag the remaining V8 background threads only compile,
 * and on Linux the node lowers their priority (`nice` +10 from its own) so
 * that they run when a core is free rather than before the event loop.
 *
 * It also gives V8 `--initial-old-space-size=128` (MiB): the old generation
 * may grow to that before its size alone starts a full collection. A node's
 * live heap is a few tens of MiB, and V8 sets the next limit a few MiB above
 * what a full collection leaves. Under bulk traffic, scavenges promote
 * objects of the requests in flight at several MiB a second, so that limit
 * was reached again within a second or two: incremental marking ran most of
 * the time, its steps (some of several ms) taken on the event loop between
 * its tasks, and ended in full-collection pauses of 4-60 ms. With the floor,
 * full collections come about every 1.5 s under that load rather than
 * several times a second. The environment variable
 * `AISTACK_GC=parallel` keeps V8's defaults for both (docs/configuration.md,
 * "The node's process").
 */
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { isAbsolute } from 'node:path'
import { isMainThread } from 'node:worker_threads'
import { UsageError } from './errors.js'

/** The flag the `aistack` command runs the node with */
export const SINGLE_THREADED_GC = '--single-threaded-gc'

/** The old generation's size (MiB) below which its growth alone does not start a full collection */
export const INITIAL_OLD_SPACE_MIB = 128

/** V8's option for it, as the node is run with it */
export const INITIAL_OLD_SPACE = `--initial-old-space-size=${INITIAL_OLD_SPACE_MIB}`

/** How much lower (`nice`) V8's background threads run than the process's main thread */
export const V8_BACKGROUND_NICE = 10

/** Thread name Node gives V8's background (platform worker) threads */
const V8_THREAD_NAME = 'V8Worker'

export interface RuntimeInfo {
  /** `single-threaded`: V8 runs with `--single-threaded-gc`; `parallel`: V8's defaults */
  gc: 'single-threaded' | 'parallel'
  /** V8 background threads found (Linux only; 0 elsewhere) */
  v8Threads: number
  /** their `nice` value, or null when they were not found or differ */
  v8ThreadsNice: number | null
  /** V8's `--initial-old-space-size` (MiB) for this process, null when it was not given (V8's default) */
  initialOldSpaceMiB: number | null
}

/** Values of the environment variable `AISTACK_GC` */
export const GC_MODES = ['single-threaded', 'parallel'] as const

/**
 * The garbage collection the node should run with, from `AISTACK_GC`
 * (default `single-threaded`).
 *
 * @throws UsageError for any other value
 */
export function wantedGc (env: NodeJS.ProcessEnv = process.env): typeof GC_MODES[number] {
  const v = env.AISTACK_GC
  if (v == null || v === '') return 'single-threaded'
  if ((GC_MODES as readonly string[]).includes(v)) return v as typeof GC_MODES[number]
  throw new UsageError(`AISTACK_GC must be "single-threaded" or "parallel" (got ${JSON.stringify(v.slice(0, 40))}); unset it for the default`)
}

/** set in the environment of the re-executed process, so that it never re-executes again */
const EXECUTED = 'AISTACK_GC_EXECUTED'

/**
 * Why `aistack start` will not re-execute itself with `--single-threaded-gc`
 * (it then runs with V8's defaults), or undefined when it will
 */
export function noExecReason (execArgv: readonly string[] = process.execArgv, execPath = process.execPath): string | undefined {
  if (process.platform === 'win32' || typeof process.execve !== 'function') return 'this platform cannot replace a running program'
  if (execArgv.some(a => /^--inspect/.test(a))) return 'it runs under the inspector (a second one would start)'
  if (gcFlag(execArgv) === false) return 'Node was started with --no-single-threaded-gc'
  try {
    if (!isAbsolute(execPath)) throw new Error('relative')
    accessSync(execPath, fsConstants.X_OK)
  } catch {
    return `Node's own program (${execPath}) cannot be found to run again`
  }
  return undefined
}

/**
 * The V8 options a node's process lacks, of those `aistack start` runs it
 * with: `--single-threaded-gc` unless it has it, and `INITIAL_OLD_SPACE`
 * unless an initial old-space or heap size is given already (on the command
 * line or in `NODE_OPTIONS`: the user's own value is kept). Empty when it has
 * them all.
 */
export function missingNodeFlags (execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string[] {
  const missing: string[] = []
  if (!singleThreadedGc(execArgv)) missing.push(SINGLE_THREADED_GC)
  if (initialOldSpaceMiB(execArgv, env) == null && ![...execArgv, ...nodeOptions(env)].some(a => INITIAL_HEAP.test(a))) missing.push(INITIAL_OLD_SPACE)
  return missing
}

/**
 * Before `aistack start` loads anything: re-executes this process with the
 * V8 options it lacks (`missingNodeFlags`: `--single-threaded-gc` and
 * `INITIAL_OLD_SPACE`) added to Node's options, unless `AISTACK_GC` is
 * `parallel`. `process.execve` replaces the program and
 * keeps the process id, standard input and output, and the environment, so
 * whoever started the node (a shell, `--detach`, a testnet, a service
 * manager) still has its pid. Node's other options are kept. It does nothing
 * for other commands, for `--help`, for `--detach` (its child does it), or
 * when `noExecReason` gives a reason (the node then runs with V8's defaults,
 * says why in its log, and `GET /v1/status` shows it). Node ends the process
 * if the exec call itself fails (a sandbox forbidding it): `AISTACK_GC=parallel`
 * avoids the re-execution.
 *
 * @param argv the command line after `aistack`
 * @throws UsageError when `AISTACK_GC` has a value other than the two modes
 */
export function execForNode (argv: readonly string[] = process.argv.slice(2)): void {
  if (argv[0] !== 'start' || argv.includes('--help') || argv.includes('-h')) return
  const executed = process.env[EXECUTED] != null
  delete process.env[EXECUTED]
  if (wantedGc() !== 'single-threaded' || argv.includes('--detach')) return
  if (executed || !isMainThread || process.argv[1] == null) return
  const missing = missingNodeFlags()
  if (missing.length === 0 || noExecReason() != null) return
  try {
    process.execve?.(process.execPath, [process.execPath, ...missing, ...process.execArgv, process.argv[1], ...argv], { ...process.env, [EXECUTED]: '1' })
  } catch {}
}

/** V8's initial heap-size options other than the old space's own (they size the old space too) */
const INITIAL_HEAP = /^--initial[-_]heap[-_]size(=|$)/
const INITIAL_OLD = /^--initial[-_]old[-_]space[-_]size=(\d+)$/

/** The options in `NODE_OPTIONS`, split on spaces (enough to find V8's size options) */
function nodeOptions (env: NodeJS.ProcessEnv): string[] {
  return (env.NODE_OPTIONS ?? '').split(/\s+/).filter(a => a !== '')
}

/**
 * V8's `--initial-old-space-size` (MiB) for this process: the last given on
 * Node's command line, else in `NODE_OPTIONS` (the command line wins); null
 * when neither gives it
 */
export function initialOldSpaceMiB (execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): number | null {
  for (const args of [execArgv, nodeOptions(env)]) {
    let mib: number | null = null
    for (const a of args) {
      const m = INITIAL_OLD.exec(a)
      if (m != null) mib = Number(m[1])
    }
    if (mib != null) return mib
  }
  return null
}

/**
 * This process's Node options, for a node process it starts (`--detach`, a
 * testnet): all but the inspector's, whose port a second process cannot share
 */
export function childNodeFlags (execArgv: readonly string[] = process.execArgv): string[] {
  return execArgv.filter(a => !/^--(inspect|debug-port)/.test(a))
}

/** true, false or undefined: what the last `--[no-]single-threaded-gc` flag says, if any */
function gcFlag (execArgv: readonly string[]): boolean | undefined {
  let on: boolean | undefined
  for (const a of execArgv) {
    if (a === SINGLE_THREADED_GC || a === '--single_threaded_gc') on = true
    if (a === '--no-single-threaded-gc' || a === '--no_single_threaded_gc') on = false
  }
  return on
}

/** true when this process runs with `--single-threaded-gc` (the last of `--[no-]single-threaded-gc` counts) */
export function singleThreadedGc (execArgv: readonly string[] = process.execArgv): boolean {
  return gcFlag(execArgv) === true
}

/** Thread ids of this process's V8 background threads, from /proc (Linux); [] elsewhere or when unreadable */
export function v8ThreadIds (): number[] {
  if (process.platform !== 'linux') return []
  const ids: number[] = []
  let tasks: string[]
  try {
    tasks = readdirSync('/proc/self/task')
  } catch {
    return []
  }
  for (const tid of tasks) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === V8_THREAD_NAME) ids.push(Number(tid))
    } catch {}
  }
  return ids
}

/** what `runtimeInfo` read, once: the threads are made at start and only `lowerV8BackgroundThreads` changes them */
let info: RuntimeInfo | undefined

/**
 * Gives V8's background threads a `nice` `V8_BACKGROUND_NICE` above the
 * process's (at most 19), when this process runs with `--single-threaded-gc`
 * on Linux (with V8's parallel collector they help the event loop's own
 * collections, which must not wait on a low-priority thread). Threads already
 * that low are left as they are. Never throws.
 *
 * @returns the threads now at that `nice` or lower (0 when nothing applies)
 */
export function lowerV8BackgroundThreads (): number {
  if (!singleThreadedGc()) return 0
  let target: number
  try {
    // relative to the process's own priority: a node started with `nice` keeps the gap
    target = Math.min(19, getPriority(process.pid) + V8_BACKGROUND_NICE)
  } catch {
    return 0
  }
  let lowered = 0
  for (const tid of v8ThreadIds()) {
    try {
      if (getPriority(tid) < target) setPriority(tid, target)
      lowered++
    } catch {}
  }
  info = undefined
  return lowered
}

/** What `GET /v1/status` reports about the process (read from /proc once, and again after `lowerV8BackgroundThreads`) */
export function runtimeInfo (): RuntimeInfo {
  info ??= readRuntimeInfo()
  return info
}

function readRuntimeInfo (): RuntimeInfo {
  const ids = v8ThreadIds()
  const nices = new Set<number>()
  for (const tid of ids) {
    try {
      nices.add(getPriority(tid))
    } catch {}
  }
  return {
    gc: singleThreadedGc() ? 'single-threaded' : 'parallel',
    v8Threads: ids.length,
    v8ThreadsNice: nices.size === 1 ? [...nices][0] : null,
    initialOldSpaceMiB: initialOldSpaceMiB()
  }
}
