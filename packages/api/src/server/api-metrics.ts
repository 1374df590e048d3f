import { type ComputeEngine, ErrorCode, vmStates } from '@nova-lfs/core';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The service's Prometheus metrics (prom-client, one registry per server): requests by route,
 * method and status; request latency; instances by vm state (counted when scraped); build and
 * placement outcomes (from the engine's events).
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly latency: Histogram<'route' | 'method'>;
  private readonly builds: Counter<'outcome'>;
  private readonly placements: Counter<'outcome'>;
  private subscription?: ReturnType<ComputeEngine['events$']['subscribe']>;

  constructor(private readonly engine: ComputeEngine) {
    this.requests = new Counter({
      name: 'nova_lfs_api_requests_total',
      help: 'API requests by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'nova_lfs_api_request_duration_seconds',
      help: 'API request latency by route and method.',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.builds = new Counter({
      name: 'nova_lfs_builds_total',
      help: 'Finished builds by outcome (active, error).',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.placements = new Counter({
      name: 'nova_lfs_placements_total',
      help: 'Placement decisions by outcome (placed, rescheduled, no_valid_host).',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    const engineRef = this.engine;
    new Gauge({
      name: 'nova_lfs_instances',
      help: 'Instances by vm state.',
      labelNames: ['vm_state'],
      registers: [this.registry],
      async collect() {
        const counts = new Map<string, number>();
        for (const i of await engineRef.list()) counts.set(i.vmState, (counts.get(i.vmState) ?? 0) + 1);
        this.reset();
        for (const state of vmStates.filter((v) => v !== 'deleted'))
          this.set({ vm_state: state }, counts.get(state) ?? 0);
      },
    });
  }

  /** Counts every answer of the app, and the engine's build and placement outcomes. */
  attach(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
      this.latency.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    });
    this.subscription = this.engine.events$.subscribe((e) => {
      if (e.type === 'instance.scheduled') this.placements.inc({ outcome: 'placed' });
      else if (e.type === 'instance.rescheduled') this.placements.inc({ outcome: 'rescheduled' });
      else if (e.type === 'instance.fault' && e.fault.code === ErrorCode.NoValidHost)
        this.placements.inc({ outcome: 'no_valid_host' });
      else if (e.type === 'instance.state' && e.previous.vmState === 'building' && e.vmState !== 'building')
        this.builds.inc({ outcome: e.vmState === 'active' ? 'active' : e.vmState });
    });
  }

  /** The text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.subscription?.unsubscribe();
  }
}
