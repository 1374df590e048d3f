/**
 * A child process for the stale-reservation test: opens the stores given on the command line
 * (shared by several processes: reservations have rows), reserves quota for project `p` and
 * prints `ready` once the reservations are acknowledged, then waits to be killed without ever
 * settling them.
 *
 * argv: dialect location count [PostgreSQL URL]
 */
import { openPostgresStores, openSqliteStores } from '../open-stores.js';

const [dialect, location, count, url] = process.argv.slice(2);
const stores =
  dialect === 'sqlite'
    ? await openSqliteStores({ path: location!, shared: true })
    : await openPostgresStores({ ...(url ? { url } : {}), schema: location! });
for (let i = 0; i < Number(count); i++) {
  await stores.quota.reserve('p', { instances: 1, cores: 1, ramMb: 128 });
}
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000);
