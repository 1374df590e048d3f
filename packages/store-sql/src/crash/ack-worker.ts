/**
 * A child process for the durability test: opens the database given on the command line, prints
 * `ready`, then has 16 concurrent writers insert rows through the store executor (every way it
 * writes), printing each
 * row's id once its write resolved (was acknowledged), until it is killed.
 *
 * argv: dialect location
 */
import { openPostgres, openSqlite } from '../database.js';

const [dialect, location] = process.argv.slice(2);
const database =
  dialect === 'sqlite'
    ? await openSqlite(location!)
    : await openPostgres(process.env.NOVA_LFS_PG_URL ?? 'postgres://nova:nova@127.0.0.1:5432/nova_test', {
        schema: location!,
        poolSize: 8,
      });
await database.exec.run({
  sql: 'create table if not exists acked (id text primary key, n integer)',
  parameters: [],
});
process.stdout.write('ready\n');

const insert = (id: string) => ({
  sql:
    dialect === 'sqlite'
      ? 'insert into acked (id, n) values (?, ?)'
      : 'insert into acked (id, n) values ($1, $2)',
  parameters: [id, 1],
});
const writer = async (w: number): Promise<never> => {
  for (let i = 0; ; i++) {
    const id = `${process.pid}-${w}-${i}`;
    // the ways a store writes: a statement, a relaxed statement, a unit of work, statements
    // that commit together (two rows, both acknowledged)
    if (i % 4 === 0) await database.exec.run(insert(id));
    else if (i % 4 === 1) await database.exec.runRelaxed(insert(id));
    else if (i % 4 === 2) await database.exec.unit((tx) => tx.run(insert(id)));
    else {
      await database.exec.runAll([insert(id), insert(`${id}-together`)]);
      process.stdout.write(`${id}-together\n`);
    }
    process.stdout.write(`${id}\n`);
  }
};
await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
