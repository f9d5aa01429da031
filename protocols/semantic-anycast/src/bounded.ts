/**
 * Makes room for one more entry in a map bounded to `max` entries: forgets
 * the oldest (first inserted) until fewer than `max` remain. The maps of
 * this module that peers can grow (owners, rate buckets, providers, vectors,
 * verified records, load and round-trip figures) are bounded this way.
 */
export function makeRoom (map: Map<unknown, unknown>, max: number): void {
  while (map.size >= max) {
    const oldest = map.keys().next().value
    if (oldest === undefined) return
    map.delete(oldest)
  }
}

/**
 * Sets `key` as the newest entry of a map bounded to `max` entries (an
 * existing entry moves to the end, the oldest others are forgotten first).
 */
export function setNewest<K, V> (map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  makeRoom(map, max)
  map.set(key, value)
}
