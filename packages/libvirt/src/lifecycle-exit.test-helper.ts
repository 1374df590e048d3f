// Run by lifecycle-events.test.ts in a child process: opens a connection, receives events,
// closes, and must then exit by itself (no timer or handle of the binding keeps it alive).
import { Connection } from './index.js';

const conn = await Connection.open('test:///default');
let events = 0;
await conn.subscribeLifecycle(() => {
  events++;
});
const d = await conn.lookupByName('test');
await d.suspend();
await d.resume();
while (events < 2) await new Promise((r) => setTimeout(r, 10));
await conn.close();
console.log(`events ${events}, closed`);
