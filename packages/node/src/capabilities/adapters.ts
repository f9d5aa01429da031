import { TaskTimeoutError } from '@aistack/task'
import type { CapabilityRegistry } from './registry.js'
import type { CapabilityProvider } from '@aistack/semantic-anycast'
import type { TaskExecutor } from '@aistack/task'

/**
 * The registry's handler timeout (`HandlerTimeoutError`) in the words of the protocol that ran
 * the handler, so that it is recorded as a timeout and not as a handler error: semantic anycast
 * answers `TIMEOUT` for an error named `TimeoutError`, the task queue records `timeout` for a
 * `TaskTimeoutError`.
 */
function isHandlerTimeout (err: unknown): err is Error {
  return (err as Error)?.name === 'HandlerTimeoutError'
}

/** The registry as semantic anycast's provider; a handler timeout becomes a `TimeoutError` */
export function anycastProvider (capabilities: CapabilityRegistry): CapabilityProvider {
  return {
    list: () => capabilities.list(),
    onChange: listener => capabilities.onChange(listener),
    invoke: async (name, input, options) => {
      try {
        return await capabilities.invoke(name, input, options)
      } catch (err) {
        if (isHandlerTimeout(err)) throw new DOMException(err.message, 'TimeoutError')
        throw err
      }
    }
  }
}

/** Runs tasks with the node's capability handlers; a handler timeout becomes a `TaskTimeoutError` */
export function capabilityExecutor (capabilities: CapabilityRegistry): TaskExecutor {
  return {
    canRun: spec => spec.capability != null && capabilities.has(spec.capability),
    capacity: () => capabilities.entriesList().reduce((free, c) => free + Math.max(0, c.limits.concurrency - c.running), 0),
    run: async (spec, input, { signal, inputBytes }) => {
      try {
        return await capabilities.invoke(spec.capability as string, input, { signal, inputBytes })
      } catch (err) {
        if (isHandlerTimeout(err)) throw new TaskTimeoutError(err.message)
        throw err
      }
    }
  }
}
