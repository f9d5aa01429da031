/**
 * How the node uses @aistack/telemetry: the service's settings from the
 * config, the telemetry gauges on `/metrics`, and the spans of asks.
 */
import { telemetry } from '@aistack/telemetry'
import { Gauge } from 'prom-client'
import { DEFAULT_TELEMETRY } from './telemetry-config.js'
import { VERSION } from './version.js'
import type { CapabilityRegistry } from './capabilities/index.js'
import type { TelemetryConfig } from './telemetry-config.js'
import type { TelemetryAlert, TelemetryComponents, TelemetryService } from '@aistack/telemetry'
import type { AnycastTracer, AskOptions, AskResult, LoadSource, SemanticAnycast } from '@aistack/semantic-anycast'
import type { TaskTracer } from '@aistack/task'
import type { GaugeConfiguration, Registry } from 'prom-client'

/** Registers a gauge (computed by its `collect` at each scrape) */
function gauge (config: GaugeConfiguration<string>): Gauge {
  return new Gauge(config)
}

/** The telemetry service of a node serving `capabilities` */
export function nodeTelemetry (network: string, config: TelemetryConfig | undefined, capabilities: CapabilityRegistry, registry: Registry | undefined): (components: TelemetryComponents) => TelemetryService {
  const c = { ...DEFAULT_TELEMETRY, ...config }
  return telemetry({
    network,
    intervalMs: c.intervalMs,
    alerts: c.alerts,
    otlp: c.otlp,
    version: VERSION,
    publish: c.enabled !== false,
    capabilities: () => capabilities.entriesList().map(e => ({ name: e.capability.name, inFlight: e.running, capacity: e.limits.concurrency })),
    bytes: registry == null ? undefined : async () => transferBytes(registry)
  })
}

/**
 * Anycast's load source: the telemetry table of `service()` (undefined until
 * the node is built), so a candidate's load, p95 and error rate come from its
 * owner's last record when that arrived after its last anycast answer
 */
export function telemetryLoadSource (service: () => TelemetryService | undefined): LoadSource {
  return { loadOf: (peerId) => service()?.loadOf(peerId) }
}

/** Bytes received and sent on all connections, from libp2p's prometheus counters */
async function transferBytes (registry: Registry): Promise<{ in: number, out: number } | undefined> {
  const metric = registry.getSingleMetric('libp2p_data_transfer_bytes_total')
  if (metric == null) return undefined
  const { values } = await metric.get()
  const of = (label: string): number => values.find(v => v.labels.protocol === label)?.value ?? 0
  return { in: of('global received'), out: of('global sent') }
}

/** Gauges of the network table and of this node's alerts, computed at each scrape */
export function telemetryMetrics (registry: Registry, service: () => TelemetryService): void {
  const nodes = service
  gauge({
    name: 'aistack_telemetry_nodes',
    help: 'Nodes in the telemetry table, by status',
    labelNames: ['status'],
    registers: [registry],
    collect () {
      const all = nodes().nodes()
      this.set({ status: 'up' }, all.filter(n => n.status === 'up').length)
      this.set({ status: 'down' }, all.filter(n => n.status === 'down').length)
    }
  })
  const perNode = (name: string, help: string, pick: (n: ReturnType<TelemetryService['nodes']>[number]) => number | undefined): void => {
    gauge({
      name,
      help,
      labelNames: ['peer'],
      registers: [registry],
      collect () {
        this.reset()
        for (const n of nodes().nodes()) {
          const v = pick(n)
          if (v != null) this.set({ peer: n.peerId }, v)
        }
      }
    })
  }
  perNode('aistack_telemetry_node_up', '1 while the node is up: a record within three of its intervals, or within its heartbeat and three intervals unless its connection to this node closed', n => n.status === 'up' ? 1 : 0)
  perNode('aistack_telemetry_node_last_seen_seconds', 'Seconds since the node\'s last telemetry record', n => n.lastSeenMs / 1000)
  perNode('aistack_telemetry_node_cpu_percent', 'CPU of the node process, percent of one core', n => n.telemetry.cpuPercent)
  perNode('aistack_telemetry_node_rss_bytes', 'Resident memory of the node process', n => n.telemetry.rssBytes)
  perNode('aistack_telemetry_node_event_loop_p99_seconds', 'Event-loop delay p99 over the last interval', n => n.telemetry.eventLoopP99Ms == null ? undefined : n.telemetry.eventLoopP99Ms / 1000)
  perNode('aistack_telemetry_node_connections', 'Open connections of the node', n => n.telemetry.connections)
  perNode('aistack_telemetry_node_alerts', 'Active alerts of the node', n => n.telemetry.alerts.length)
  const perCapability = (name: string, help: string, pick: (c: ReturnType<TelemetryService['nodes']>[number]['telemetry']['capabilities'][number]) => number): void => {
    gauge({
      name,
      help,
      labelNames: ['peer', 'capability'],
      registers: [registry],
      collect () {
        this.reset()
        for (const n of nodes().nodes()) {
          for (const c of n.telemetry.capabilities) this.set({ peer: n.peerId, capability: c.name }, pick(c))
        }
      }
    })
  }
  perCapability('aistack_telemetry_capability_in_flight', 'Requests running', c => c.inFlight)
  perCapability('aistack_telemetry_capability_capacity', 'Concurrency limit', c => c.capacity)
  perCapability('aistack_telemetry_capability_p95_seconds', 'p95 latency over the window', c => c.p95Ms / 1000)
  perCapability('aistack_telemetry_capability_requests', 'Requests since the node started', c => c.requests)
  perCapability('aistack_telemetry_capability_errors', 'Errors since the node started', c => c.errors)
  gauge({
    name: 'aistack_telemetry_gpu_utilization_percent',
    help: 'GPU utilisation as nvidia-smi reports it',
    labelNames: ['peer', 'gpu'],
    registers: [registry],
    collect () {
      this.reset()
      for (const n of nodes().nodes()) {
        for (const g of n.telemetry.gpus ?? []) this.set({ peer: n.peerId, gpu: String(g.index) }, g.utilization)
      }
    }
  })
  gauge({
    name: 'aistack_telemetry_alert',
    help: '1 while an alert of this node is active (kind: latency-p95, error-rate, throughput, gpu-idle, gpu-overloaded)',
    labelNames: ['kind', 'subject'],
    registers: [registry],
    collect () {
      this.reset()
      for (const a of nodes().alerts()) this.set({ kind: a.kind, subject: a.subject }, 1)
    }
  })
  gauge({
    name: 'aistack_telemetry_records',
    help: 'Telemetry records this node published, and received by outcome (accepted, ignored: rate limits and replays, rejected: bad records), since it started',
    labelNames: ['outcome'],
    registers: [registry],
    collect () {
      const t = nodes().traffic
      this.set({ outcome: 'published' }, t.published)
      this.set({ outcome: 'accepted' }, t.received)
      this.set({ outcome: 'ignored' }, t.ignored)
      this.set({ outcome: 'rejected' }, t.rejected)
    }
  })
  gauge({
    name: 'aistack_telemetry_traffic_bytes',
    help: 'Telemetry record bytes this node published and received since it started',
    labelNames: ['direction'],
    registers: [registry],
    collect () {
      const t = nodes().traffic
      this.set({ direction: 'published' }, t.publishedBytes)
      this.set({ direction: 'received' }, t.receivedBytes)
    }
  })
}

/**
 * The tracer of the anycast service and of the task queue, bound to the
 * telemetry service once the node exists (services are made side by side):
 * work served before that, or with a malformed traceparent, goes untraced.
 * Servers continue traces; task submitters adopt the spans of results.
 */
export function lateTracer (service: () => TelemetryService | undefined): AnycastTracer & TaskTracer {
  return {
    continue: (traceparent, name, attributes) => service()?.tracing.continue(traceparent, name, attributes),
    adopt: (traceparent, spans) => service()?.tracing.adoptUnder(traceparent, spans) ?? 0
  }
}

/**
 * Runs an anycast ask inside a trace: a root `ask` span on this node with
 * the query, and the answering peer, capability, similarity and attempts;
 * one child span per attempt with the semantic path, and under it the spans
 * the answering node returned. Returns the answer and its trace id.
 */
export async function tracedAsk (anycast: SemanticAnycast, tracing: TelemetryService['tracing'], query: string, input: unknown, options: AskOptions): Promise<AskResult & { traceId: string }> {
  const span = tracing.root('ask', { 'aistack.query': query.slice(0, 256), 'aistack.timeout_ms': options.timeoutMs ?? 0 })
  const traceId = span.traceId
  try {
    const result = await anycast.ask(query, input, { ...options, trace: span })
    span.setAttributes({
      'aistack.peer': result.peerId,
      'aistack.capability': result.capability,
      'aistack.similarity': Math.round(result.similarity * 10000) / 10000,
      'aistack.attempts': result.attempts,
      'aistack.remote_ms': Math.round(result.latencyMs * 1000) / 1000
    })
    return { ...result, traceId }
  } catch (err: any) {
    span.end(`${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)}`)
    if (err != null && typeof err === 'object') err.traceId = traceId
    throw err
  } finally {
    span.end()
  }
}

export type { TelemetryAlert }
