import 'reflect-metadata';
import type { StorageOption } from '@nova-lfs/core';
import { runQuickstart } from './quickstart.js';

/** `NOVA_LFS_STORE`: sqlite (default; `NOVA_LFS_DATA_DIR`), postgres (`NOVA_LFS_PG_URL`) or memory. */
function storageFromEnvironment(): StorageOption {
  const store = process.env.NOVA_LFS_STORE ?? 'sqlite';
  if (store === 'sqlite' || store === 'memory') return store;
  if (store === 'postgres') return { kind: 'postgres' };
  throw new Error(`NOVA_LFS_STORE must be sqlite, postgres or memory, not ${JSON.stringify(store)}`);
}

await runQuickstart({ storage: storageFromEnvironment() });
