import { DuplicateError, NotFoundError } from '../errors.js';
import type { ServerGroup } from '../model/server-group.js';
import type { ServerGroupStore } from '../ports/stores.js';

/** In-memory {@link ServerGroupStore}. */
export class MemoryServerGroupStore implements ServerGroupStore {
  private readonly records = new Map<string, ServerGroup>();

  async get(id: string): Promise<ServerGroup | undefined> {
    return this.records.get(id);
  }
  async list(projectId?: string): Promise<ServerGroup[]> {
    return [...this.records.values()].filter((g) => projectId === undefined || g.projectId === projectId);
  }
  async add(group: ServerGroup): Promise<void> {
    if (this.records.has(group.id)) throw new DuplicateError('serverGroup', group.id);
    this.records.set(group.id, { ...group, members: [...group.members] });
  }
  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }
  async addMembers(id: string, instanceIds: readonly string[]): Promise<void> {
    this.addMembersNow(id, instanceIds);
  }
  async removeMember(id: string, instanceId: string): Promise<void> {
    this.removeMemberNow(id, instanceId);
  }
  /** Whether the group exists, synchronously (for a memory unit of work). */
  has(id: string): boolean {
    return this.records.has(id);
  }
  /** {@link MemoryServerGroupStore.addMembers}, synchronously. @throws NotFoundError */
  addMembersNow(id: string, instanceIds: readonly string[]): void {
    const g = this.records.get(id);
    if (!g) throw new NotFoundError('serverGroup', id);
    this.records.set(id, {
      ...g,
      members: [...g.members, ...instanceIds.filter((i) => !g.members.includes(i))],
    });
  }
  /** {@link MemoryServerGroupStore.removeMember}, synchronously. */
  removeMemberNow(id: string, instanceId: string): void {
    const g = this.records.get(id);
    if (!g) return;
    this.records.set(id, { ...g, members: g.members.filter((m) => m !== instanceId) });
  }
}
