import { describe, expect, it } from 'vitest';
import { newId } from './ids.js';

describe('newId', () => {
  it('makes RFC 9562 version 7 UUIDs whose order follows creation time', async () => {
    const first = newId();
    await new Promise((r) => setTimeout(r, 2));
    const later = Array.from({ length: 100 }, () => newId());
    for (const id of [first, ...later]) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(later.every((id) => id > first)).toBe(true);
    expect(new Set(later).size).toBe(100);
    const ms = Number.parseInt(first.replace('-', '').slice(0, 12), 16);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5_000);
  });
});
