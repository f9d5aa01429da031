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
 * process id: `execForNode`, called by bin.ts): each isolate collects its
 * garbage on its own thread, the bulk lane's worker at its own lower
 * priority. With that flag the remaining V8 background threads only compile,
 * and on Linux the node lowers their priority (`nice` +10 from its own) so
 * that they run when a core is free rather than before the event loop. The
 * environment variable `AISTACK_GC=parallel` keeps V8's defaults
 * (docs/configuration.md, "The node's process").
 */
import { readdirSync, readFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { isMainThread } from 'node:worker_threads'
import { UsageError } from './errors.js'

/** The flag the `aistack` command runs the node with */
export const SINGLE_THREADED_GC = '--single-threaded-gc'

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
  throw new UsageError(`AISTACK_GC must be "single-threaded" or "parallel" (got "${v.slice(0, 40)}"); unset it for the default`)
}

/**
 * Before `aistack start` (in the foreground) loads anything: re-executes this
 * process with `--single-threaded-gc` added to Node's options, when it lacks
 * it and `AISTACK_GC` is not `parallel`. `process.execve` replaces the
 * program and keeps the process id, standard input and output, and the
 * environment, so whoever started the node (a shell, `--detach`, a testnet,
 * a service manager) still has its pid. Does nothing for other commands, on
 * platforms without `execve` (Windows), or when the exec fails (the node then
 * runs with V8's defaults, which `GET /v1/status` shows).
 *
 * @param argv the command line after `aistack`
 * @throws UsageError when `AISTACK_GC` has a value other than the two modes
 */
export function execForNode (argv: readonly string[] = process.argv.slice(2)): void {
  if (argv[0] !== 'start' || argv.includes('--detach') || argv.includes('--help') || argv.includes('-h')) return
  if (wantedGc() !== 'single-threaded' || singleThreadedGc() || !isMainThread) return
  if (typeof process.execve !== 'function' || process.argv[1] == null) return
  try {
    process.execve(process.execPath, [process.execPath, SINGLE_THREADED_GC, ...process.execArgv, process.argv[1], ...argv], process.env)
  } catch {}
}

/** true when this process runs with `--single-threaded-gc` */
export function singleThreadedGc (execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some(a => a === SINGLE_THREADED_GC || a === '--single_threaded_gc')
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

/**
 * Gives V8's background threads a `nice` `V8_BACKGROUND_NICE` above the
 * process's (at most 19), when this
 * process runs with `--single-threaded-gc` on Linux (with V8's parallel
 * collector they help the event loop's own collections, which must not wait
 * on a low-priority thread). Never throws.
 *
 * @returns the number of threads lowered (0 when none were, or nothing applies)
 */
export function lowerV8BackgroundThreads (): number {
  if (!singleThreadedGc()) return 0
  let lowered = 0
  let target: number
  try {
    // relative to the process's own priority: a node started with `nice` keeps the gap
    target = Math.min(19, getPriority(process.pid) + V8_BACKGROUND_NICE)
  } catch {
    return 0
  }
  for (const tid of v8ThreadIds()) {
    try {
      if (getPriority(tid) < target) setPriority(tid, target)
      lowered++
    } catch {}
  }
  return lowered
}

/** What `GET /v1/status` reports about the process */
export function runtimeInfo (): RuntimeInfo {
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
    v8ThreadsNice: nices.size === 1 ? [...nices][0] : null
  }
}
