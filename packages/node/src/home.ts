import { mkdir, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { writeDefaultConfig } from './config.js'
import { HomeError, UsageError } from './errors.js'
import { IDENTITY_FILE, exists, readIdentity, writeIdentity } from './identity.js'
import type { PrivateKey } from '@libp2p/interface'

export const CONFIG_FILE = 'config.json'

export interface InitResult {
  privateKey: PrivateKey
  createdIdentity: boolean
  createdConfig: boolean
}

/**
 * Creates the home directory and its missing parents (mode 0700), one level at a time: a
 * recursive `mkdir` can loop forever under /proc. Throws HomeError, naming the path, when a
 * part of the path is a file or cannot be created.
 */
export async function makeHome (home: string): Promise<void> {
  const missing: string[] = []
  let dir = resolve(home)
  for (;;) {
    let isDir: boolean
    try {
      isDir = (await stat(dir)).isDirectory()
    } catch (err: any) {
      if (err.code !== 'ENOENT') throw new HomeError(`--home ${home}: cannot use ${dir} (${String(err.code ?? err.message)}); pick another home`)
      missing.unshift(dir)
      const parent = dirname(dir)
      if (parent === dir) break
      dir = parent
      continue
    }
    if (!isDir) throw new HomeError(`--home ${home}: ${dir} is a file, not a directory; pick another home`)
    break
  }
  for (const d of missing) {
    try {
      await mkdir(d, { mode: 0o700 })
    } catch (err: any) {
      if (err.code === 'EEXIST') continue // made by a process starting at the same time
      throw new HomeError(`--home ${home}: cannot create ${d} (${String(err.code ?? err.message)}); pick another home`)
    }
  }
}

/**
 * Makes sure `home` has an identity and a config file. An existing identity is kept (and
 * checked) unless `force`; an existing config is never overwritten.
 */
export async function initHome (home: string, { force = false, refuseExisting = false } = {}): Promise<InitResult> {
  await makeHome(home)
  const keyFile = join(home, IDENTITY_FILE)
  const configFile = join(home, CONFIG_FILE)
  let privateKey: PrivateKey
  let createdIdentity = false
  if (await exists(keyFile) && !force) {
    if (refuseExisting) throw new UsageError(`${keyFile} already exists; use --force to replace the identity (the node gets a new peer ID)`)
    privateKey = await readIdentity(keyFile)
  } else {
    privateKey = await writeIdentity(keyFile, undefined, { replace: force })
    createdIdentity = true
  }
  let createdConfig = false
  if (!await exists(configFile)) {
    await writeDefaultConfig(configFile)
    createdConfig = true
  }
  return { privateKey, createdIdentity, createdConfig }
}
