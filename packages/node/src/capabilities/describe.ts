import { CapabilitySpecError } from './errors.js'
import { describeA2aAgent, describeMcpTool } from './remote.js'
import type { CapabilitySpec } from './spec.js'

/**
 * Fills in the description of each capability served over MCP or A2A that gives none, from its
 * tool's description or its agent card (read once, at start). Throws CapabilitySpecError naming the
 * capability when the server cannot be reached or has no such tool or skill.
 */
export async function describeRemoteCapabilities (specs: CapabilitySpec[]): Promise<CapabilitySpec[]> {
  return await Promise.all(specs.map(async (spec, i) => {
    if (spec.description != null) return spec
    const h = spec.handler
    try {
      if (h.type === 'mcp') return { ...spec, description: await describeMcpTool(h) }
      if (h.type === 'a2a') return { ...spec, description: await describeA2aAgent(h) }
    } catch (err: any) {
      throw new CapabilitySpecError(`capabilities[${i}].description`, `is not given and could not be read from the ${h.type === 'mcp' ? 'MCP tool' : 'A2A agent'} (${String(err?.message ?? err)}); give one or check the handler`)
    }
    return spec
  }))
}
