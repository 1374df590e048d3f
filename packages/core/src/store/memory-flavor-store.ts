import { DuplicateError } from '../errors.js';
import type { Flavor } from '../model/flavor.js';
import type { FlavorStore } from '../ports/stores.js';

/** In-memory {@link FlavorStore}. */
export class MemoryFlavorStore implements FlavorStore {
  private readonly records = new Map<string, Flavor>();

  constructor(flavors: readonly Flavor[] = []) {
    for (const f of flavors) this.records.set(f.id, f);
  }
  async get(id: string): Promise<Flavor | undefined> {
    return this.records.get(id);
  }
  async list(): Promise<Flavor[]> {
    return [...this.records.values()];
  }
  async add(flavor: Flavor): Promise<void> {
    if (this.records.has(flavor.id)) throw new DuplicateError('flavor', flavor.id);
    this.records.set(flavor.id, flavor);
  }
  async replace(flavor: Flavor): Promise<boolean> {
    if (!this.records.has(flavor.id)) return false;
    this.records.set(flavor.id, flavor);
    return true;
  }
  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }
}
