/** The `a2a` field of config.json (docs/a2a.md) */
export interface A2aConfig {
  /** the agent card's skills: this node's capabilities (`local`, default) or every one it knows (`network`) */
  skills?: 'local' | 'network'
  /** the URL A2A clients reach the API at, when not the address it listens on (behind a reverse proxy) */
  publicUrl?: string
  /** how long a message waits for its work before it becomes a Task, ms (default 10,000) */
  messageWaitMs?: number
}

/** Checks config.json's `a2a`; throws an Error naming the field at fault */
export function checkA2aConfig (v: unknown, f: string): A2aConfig {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${f} must be an object`)
  const out: A2aConfig = {}
  for (const [key, value] of Object.entries(v)) {
    if (key.startsWith('$')) continue
    if (key === 'skills') {
      if (value !== 'local' && value !== 'network') throw new Error(`${f}.skills must be one of local, network`)
      out.skills = value
    } else if (key === 'publicUrl') {
      let url: URL | undefined
      try { url = new URL(String(value)) } catch {}
      if (typeof value !== 'string' || url == null || !['http:', 'https:'].includes(url.protocol)) throw new Error(`${f}.publicUrl must be an http(s) URL`)
      out.publicUrl = value.replace(/\/+$/, '')
    } else if (key === 'messageWaitMs') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 600_000) throw new Error(`${f}.messageWaitMs must be an integer from 0 to 600000`)
      out.messageWaitMs = value
    } else {
      throw new Error(`${f}.${key} is not a known field`)
    }
  }
  return out
}
