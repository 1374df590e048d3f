import type { Host } from '../model/host.js';
import type { HostStore } from '../ports/stores.js';

/** In-memory {@link HostStore}. */
export class MemoryHostStore implements HostStore {
  private readonly records = new Map<string, Host>();

  async upsert(host: Host): Promise<void> {
    this.records.set(host.id, host);
  }
  async get(id: string): Promise<Host | undefined> {
    return this.records.get(id);
  }
  async list(): Promise<Host[]> {
    return [...this.records.values()];
  }
  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }
}
