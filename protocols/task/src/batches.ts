/**
 * Announcements and results travel in signed batches: one signature for what
 * a tick produced, within the sizes a receiver accepts.
 */

/** `items` in order, cut into batches of at most `maxCount` items and about `maxBytes` (an item alone may be larger) */
export function inBatches<T> (items: T[], sizeOf: (item: T) => number, maxBytes: number, maxCount: number): T[][] {
  const batches: T[][] = []
  let batch: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (batch.length > 0 && (bytes + size > maxBytes || batch.length >= maxCount)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(item)
    bytes += size
  }
  if (batch.length > 0) {
    batches.push(batch)
  }
  return batches
}
