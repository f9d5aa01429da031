import { ApiError } from '../errors.js'
import { requireRunning } from '../run-file.js'
import type { RunInfo } from '../run-file.js'

/** Calls a running node's HTTP API with its token; API errors become ApiError. */
export async function callApi (info: RunInfo, method: string, path: string, body?: unknown, { timeoutMs = 30_000 } = {}): Promise<any> {
  let response: Response
  try {
    response = await fetch(info.api.url + path, {
      method,
      headers: { authorization: `Bearer ${info.api.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs)
    })
  } catch (err: any) {
    throw new ApiError(0, 'unreachable', `cannot reach the node's API at ${info.api.url} (${String(err.cause?.message ?? err.message ?? err)})`)
  }
  const text = await response.text()
  let json: any
  try {
    json = text === '' ? {} : JSON.parse(text)
  } catch {
    json = { text }
  }
  if (!response.ok) {
    throw new ApiError(response.status, json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${response.status}`)
  }
  return json
}

export async function apiFor (home: string): Promise<{ info: RunInfo, call: (method: string, path: string, body?: unknown) => Promise<any> }> {
  const info = await requireRunning(home)
  return { info, call: async (method, path, body) => callApi(info, method, path, body) }
}
