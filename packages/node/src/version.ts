import { readFileSync } from 'node:fs'

// read once from this package's package.json so the version has one source
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

export const VERSION: string = pkg.version
