#!/usr/bin/env node
/**
 * `nova-lfs-agent`: the compute agent of one host (see {@link agentMain}).
 */
import { agentMain } from './agent-main.js';

void agentMain(process.argv.slice(2));
