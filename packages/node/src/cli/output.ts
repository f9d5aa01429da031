/** Prints rows as an aligned plain-text table. */
export function table (headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [headers, ...rows.map(r => r.map(c => c == null ? '-' : String(c)))]
  const widths = headers.map((_, i) => Math.max(...cells.map(r => r[i]?.length ?? 0)))
  return cells.map(r => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ')).join('\n')
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}
