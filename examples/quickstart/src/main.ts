import 'reflect-metadata';
import { runQuickstart } from './quickstart.js';

await runQuickstart();
