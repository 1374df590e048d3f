/** A call held until the test lets it go on (see `FakeDriver.holdNext`, {@link holdNextCall}). */
export interface FakeHold {
  /** Resolves once the call has reached the hold (its effect not yet made). */
  readonly reached: Promise<void>;
  /** Lets the call go on. */
  release(): void;
}

/** A hold and the two ends the held call uses: `reach` when it arrives, then it awaits `gate`. */
export function createHold(): { hold: FakeHold; reach: () => void; gate: Promise<void> } {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => {
    reach = r;
  });
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return { hold: { reached, release }, reach, gate };
}

/**
 * Makes the next call of `target[method]` (an async method: an adapter's `connect`, ...) wait
 * until the hold is released; then it runs as usual. Later calls are not held.
 */
export function holdNextCall(target: object, method: string): FakeHold {
  const methods = target as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = methods[method]!.bind(target);
  const { hold, reach, gate } = createHold();
  methods[method] = async (...args: unknown[]) => {
    methods[method] = original;
    reach();
    await gate;
    return original(...args);
  };
  return hold;
}
