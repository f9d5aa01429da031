import { Key } from 'interface-datastore'
import type { CapabilityRegistry } from './registry.js'
import type { CapabilitySpec } from './spec.js'
import type { Datastore } from 'interface-datastore'

/** Datastore prefix of the capabilities added through the API: one key per name, the spec as JSON */
export const PERSISTED_PREFIX = '/aistack/capabilities'

/** Capabilities kept at once (the API accepts no more than this many additions) */
export const MAX_PERSISTED = 1000

function keyOf (name: string): Key {
  return new Key(`${PERSISTED_PREFIX}/${encodeURIComponent(name)}`)
}

/** Keeps a capability added through the API, so that it is served again after a restart. */
export async function persistCapability (datastore: Datastore, spec: CapabilitySpec): Promise<void> {
  await datastore.put(keyOf(spec.name), new TextEncoder().encode(JSON.stringify(spec)))
}

/** Forgets a capability removed through the API (no error when it was not kept). */
export async function forgetCapability (datastore: Datastore, name: string): Promise<void> {
  await datastore.delete(keyOf(name))
}

/**
 * Adds the capabilities kept in the datastore to `registry`; returns the names added and, for
 * each one that could not be (a name taken by config.json, a spec no longer valid), why.
 */
export async function loadPersistedCapabilities (datastore: Datastore, registry: CapabilityRegistry): Promise<{ added: string[], skipped: Array<{ key: string, reason: string }> }> {
  const added: string[] = []
  const skipped: Array<{ key: string, reason: string }> = []
  let count = 0
  for await (const { key, value } of datastore.query({ prefix: PERSISTED_PREFIX })) {
    if (++count > MAX_PERSISTED) break
    try {
      const spec = JSON.parse(new TextDecoder().decode(value))
      added.push(registry.add(spec, `datastore ${key.toString()}`, { allowedTypes: ['http', 'exec'] }))
    } catch (err: any) {
      skipped.push({ key: key.toString(), reason: String(err?.message ?? err) })
    }
  }
  return { added, skipped }
}
