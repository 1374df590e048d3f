import type { PowerStateEvent } from '@nova-lfs/core';
import type Dockerode from 'dockerode';
import { type Observable, Subject } from 'rxjs';
import { HOST_LABEL, INSTANCE_LABEL } from './labels.js';
import { powerStateOfAction } from './power-state.js';

interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly time?: number;
  readonly Actor?: { readonly Attributes?: Record<string, string> };
}

/**
 * Follows dockerd's event stream for the containers of one host (by label) and turns container
 * lifecycle actions into power-state events. Reconnects (after `retryMs`) when the stream ends,
 * until closed.
 */
export class DockerEventStream {
  private readonly subject = new Subject<PowerStateEvent>();
  readonly events$: Observable<PowerStateEvent> = this.subject.asObservable();
  private stream: NodeJS.ReadableStream | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly docker: Dockerode,
    private readonly hostId: string,
    private readonly retryMs = 1000,
  ) {}

  /** Starts following; resolves once the stream is open. */
  async open(): Promise<void> {
    if (this.closed || this.stream) return;
    try {
      const stream = (await this.docker.getEvents({
        filters: { type: ['container'], label: [INSTANCE_LABEL, `${HOST_LABEL}=${this.hostId}`] },
      })) as NodeJS.ReadableStream;
      this.stream = stream;
      let rest = '';
      stream.on('data', (chunk: Buffer) => {
        rest += chunk.toString('utf8');
        let nl = rest.indexOf('\n');
        while (nl >= 0) {
          this.onLine(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
          nl = rest.indexOf('\n');
        }
      });
      const again = () => {
        this.stream = undefined;
        this.retry();
      };
      stream.on('end', again);
      stream.on('error', again);
    } catch {
      this.retry();
    }
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.open();
    }, this.retryMs);
    this.timer.unref();
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let e: DockerEvent;
    try {
      e = JSON.parse(line) as DockerEvent;
    } catch {
      return;
    }
    const instanceId = e.Actor?.Attributes?.[INSTANCE_LABEL];
    const power = e.Action ? powerStateOfAction(e.Action) : undefined;
    if (!instanceId || !power) return;
    this.subject.next({ instanceId, powerState: power, at: (e.time ?? Date.now() / 1000) * 1000 });
  }

  /** Stops following and completes `events$`. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const s = this.stream as unknown as { destroy?: () => void } | undefined;
    s?.destroy?.();
    this.stream = undefined;
    this.subject.complete();
  }
}
