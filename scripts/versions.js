// Prints the Node.js that runs the npm scripts next to the system one, and stops early
// when the scripts would run on an older Node than the project needs.
import { execFileSync } from 'node:child_process'

const major = Number(process.versions.node.split('.')[0])
let system = 'unknown'
try {
  const path = (process.env.PATH ?? '').split(':').filter(p => !p.includes('node_modules')).join(':')
  system = execFileSync('node', ['--version'], { env: { ...process.env, PATH: path } }).toString().trim()
} catch {}
console.log(`node for npm scripts: v${process.versions.node} (system node: ${system})`)
if (major < 24) {
  console.error('aistack needs Node.js 24 or newer: run `npm install` so the pinned node devDependency is used')
  process.exit(1)
}
