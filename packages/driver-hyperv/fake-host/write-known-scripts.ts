// Writes known-scripts.json (the sha256 of each of the driver's fixed scripts), which the FAKE
// Hyper-V emulator uses to recognise them. Run after changing src/scripts.ts:
//   node --conditions=@nova-lfs/source --import tsx packages/driver-hyperv/fake-host/write-known-scripts.ts
import { writeFileSync } from 'node:fs';
import { scriptManifest } from '../src/scripts.js';

writeFileSync(
  new URL('./known-scripts.json', import.meta.url),
  `${JSON.stringify(scriptManifest(), null, 2)}\n`,
);
