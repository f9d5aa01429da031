// The calls of the page to its node's API. The bearer token comes from the URL fragment
// (`#token=…`, which browsers never send to a server) and is kept in sessionStorage so that a
// reload of the tab works; the page itself holds no data.

const KEY = 'aistack.token'

/** Takes the token from `#token=…` (removing it from the address bar) or from window.sessionStorage. */
export function readToken () {
  const params = new URLSearchParams(window.location.hash.slice(1))
  const fromHash = params.get('token')
  if (fromHash != null && fromHash !== '') {
    window.sessionStorage.setItem(KEY, fromHash)
    window.history.replaceState(null, '', window.location.pathname + window.location.search)
    return fromHash
  }
  return window.sessionStorage.getItem(KEY)
}

/** An error answer of the API: `status` and the `{error: {code, message}}` it carried. */
export class ApiCallError extends Error {
  constructor (status, code, message) {
    super(message)
    this.name = 'ApiCallError'
    this.status = status
    this.code = code
  }
}

/** A client of the API on the page's own origin. */
export class Api {
  constructor (token) {
    this.token = token
  }

  /** GET `path`; resolves to the parsed JSON, rejects with ApiCallError (or a network error). */
  async get (path, { timeoutMs = 10_000 } = {}) {
    const response = await fetch(path, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(timeoutMs) })
    const json = await response.json().catch(() => undefined)
    if (!response.ok) throw new ApiCallError(response.status, json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${response.status}`)
    return json
  }

  /**
   * Follows a server-sent events stream with the Authorization header (EventSource cannot send
   * one): calls `onEvent(type, data)` per event until `signal` aborts; reconnects after 3 s when
   * the stream ends or fails, calling `onState(connected, error?)`.
   */
  async follow (path, onEvent, onState, signal) {
    while (!signal.aborted) {
      try {
        const response = await fetch(path, { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal })
        if (!response.ok || response.body == null) throw new ApiCallError(response.status, 'http_error', `events: HTTP ${response.status}`)
        onState(true)
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += value
          let end
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const type = /^event: (.*)$/m.exec(block)?.[1]
            const data = /^data: (.*)$/m.exec(block)?.[1]
            if (type != null && data != null) onEvent(type, JSON.parse(data))
          }
        }
        onState(false)
      } catch (err) {
        if (signal.aborted) return
        onState(false, err)
      }
      await new Promise(resolve => setTimeout(resolve, 3000))
    }
  }
}
