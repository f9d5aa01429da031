import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isAlive, readRunFile } from '../src/run-file.js'
import type { RunInfo } from '../src/run-file.js'
import type { ChildProcess } from 'node:child_process'

export const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T> (check: () => T | Promise<T>, { timeoutMs = 20_000, intervalMs = 50, what = 'condition' } = {}): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError != null ? ` (last error: ${String(lastError)})` : ''}`)
}

const tempDirs: string[] = []

export async function tempDir (prefix = 'aistack-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

export async function removeTempDirs (): Promise<void> {
  await Promise.all(tempDirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the aistack CLI to completion (killed after `timeoutMs`). */
export async function runCli (args: string[], { timeoutMs = 60_000, env = {} }: { timeoutMs?: number, env?: Record<string, string> } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface NodeProcess {
  child: ChildProcess
  run: RunInfo
  home: string
  output: () => string
  /** Sends SIGTERM and waits for the process to exit; resolves to its exit code. */
  stop: () => Promise<number | null>
}

/** Starts `aistack start` on `home` with loopback ports and waits for its run.json. */
export async function startNodeProcess (home: string, extraArgs: string[] = [], { timeoutMs = 30_000, env }: { timeoutMs?: number, env?: Record<string, string> } = {}): Promise<NodeProcess> {
  const args = [BIN, 'start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', ...extraArgs]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env != null ? { ...process.env, ...env } : undefined })
  let out = ''
  child.stdout?.on('data', d => { out += String(d) })
  child.stderr?.on('data', d => { out += String(d) })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  let gone = false
  exited.then(() => { gone = true }, () => {})
  const run = await waitFor(async () => {
    if (gone) throw new Error(`aistack start exited early:\n${out}`)
    const info = await readRunFile(home)
    return info?.pid === child.pid ? info : undefined
  }, { timeoutMs, what: `run.json in ${home}` }).catch(err => {
    child.kill('SIGKILL')
    throw err
  })
  // run.json is written just before the ready banner (or JSON ready line) is printed: tests read
  // the banner, so wait for it too
  await waitFor(() => gone || /stop with Ctrl-C|"event":"ready"/.test(out), { timeoutMs: 10_000, what: `the ready banner of ${home}` }).catch(() => {})
  return {
    child,
    run,
    home,
    output: () => out,
    stop: async () => {
      if (!gone) child.kill('SIGTERM')
      const timer = setTimeout(() => { if (isAlive(child.pid as number)) child.kill('SIGKILL') }, 20_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}

/** Calls a node's HTTP API; returns status and parsed JSON body. */
export async function api (run: RunInfo, method: string, path: string, { body, token = run.api.token, raw }: { body?: unknown, token?: string | null, raw?: string } = {}): Promise<{ status: number, json: any, text: string }> {
  const headers: Record<string, string> = {}
  if (token != null) headers.authorization = `Bearer ${token}`
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(run.api.url + path, { method, headers, body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined) })
  const text = await response.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: response.status, json, text }
}

export interface SseMessage { event: string, data: any }

/** Takes the complete server-sent events off the front of `buffer`; returns them and the rest */
export function takeSseMessages (buffer: string): { messages: SseMessage[], rest: string } {
  const messages: SseMessage[] = []
  let end: number
  while ((end = buffer.indexOf('\n\n')) >= 0) {
    const block = buffer.slice(0, end)
    buffer = buffer.slice(end + 2)
    const event = /^event: (.*)$/m.exec(block)?.[1]
    const data = /^data: (.*)$/m.exec(block)?.[1]
    if (event != null && data != null) messages.push({ event, data: JSON.parse(data) })
  }
  return { messages, rest: buffer }
}
