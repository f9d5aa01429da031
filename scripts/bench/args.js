// Command-line flags of the benchmark scripts: `--name value` pairs with defaults, `--help`,
// and one line with exit status 2 for anything else.
import { parseArgs } from 'node:util'

/** A bad flag: the message and the usage on stderr, exit status 2 */
export function failUsage (message, usage) {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}

/**
 * Flags named after the keys of `defaults`; a flag whose default is a number takes a
 * positive number. Prints `usage` and exits for --help.
 */
export function benchArgs (usage, defaults) {
  const fail = (message) => { failUsage(message, usage) }
  let values
  try {
    ({ values } = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.keys(defaults).map(name => [name, { type: 'string' }]))
      }
    }))
  } catch (err) {
    fail(err.message)
  }
  if (values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  const out = {}
  for (const [name, fallback] of Object.entries(defaults)) {
    const given = values[name]
    if (typeof fallback !== 'number') {
      out[name] = given ?? fallback
      continue
    }
    const n = given == null ? fallback : Number(given)
    if (!Number.isFinite(n) || n <= 0) fail(`--${name} takes a positive number, not "${given}"`)
    out[name] = n
  }
  return out
}

/** LSH configs `tables x bits x probes [x answers]`, comma-separated, e.g. `8x6x7,6x6x7` */
export function lshConfigs (text, usage) {
  return text.split(',').map(config => {
    const parts = config.split('x').map(Number)
    if (parts.length < 3 || parts.length > 4 || parts.some(n => !Number.isInteger(n) || n < 1)) {
      failUsage(`bad config "${config}": tables x bits x probes [x answers], whole numbers`, usage)
    }
    const [tables, bits, probes, answers = 1] = parts
    return { tables, bits, probes, answers }
  })
}
