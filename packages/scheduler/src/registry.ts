import { DuplicatePluginError } from './errors.js';
import type { SchedulerPlugin } from './plugin.js';

/** Every plugin available to profiles, by name. Registering a name twice is an error. */
export class PluginRegistry {
  private readonly plugins = new Map<string, SchedulerPlugin>();

  /** @throws DuplicatePluginError */
  register(plugin: SchedulerPlugin): this {
    if (this.plugins.has(plugin.name)) throw new DuplicatePluginError(plugin.name);
    this.plugins.set(plugin.name, plugin);
    return this;
  }

  get(name: string): SchedulerPlugin | undefined {
    return this.plugins.get(name);
  }

  names(): string[] {
    return [...this.plugins.keys()];
  }
}
