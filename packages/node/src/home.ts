import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { writeDefaultConfig } from './config.js'
import { UsageError } from './errors.js'
import { IDENTITY_FILE, exists, readIdentity, writeIdentity } from './identity.js'
import type { PrivateKey } from '@libp2p/interface'

export const CONFIG_FILE = 'config.json'

export interface InitResult {
  privateKey: PrivateKey
  createdIdentity: boolean
  createdConfig: boolean
}

/**
 * Makes sure `home` has an identity and a config file. An existing identity is kept (and
 * checked) unless `force`; an existing config is never overwritten.
 */
export async function initHome (home: string, { force = false, refuseExisting = false } = {}): Promise<InitResult> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const keyFile = join(home, IDENTITY_FILE)
  const configFile = join(home, CONFIG_FILE)
  let privateKey: PrivateKey
  let createdIdentity = false
  if (await exists(keyFile) && !force) {
    if (refuseExisting) throw new UsageError(`${keyFile} already exists; use --force to replace the identity (the node gets a new peer ID)`)
    privateKey = await readIdentity(keyFile)
  } else {
    privateKey = await writeIdentity(keyFile)
    createdIdentity = true
  }
  let createdConfig = false
  if (!await exists(configFile)) {
    await writeDefaultConfig(configFile)
    createdConfig = true
  }
  return { privateKey, createdIdentity, createdConfig }
}
