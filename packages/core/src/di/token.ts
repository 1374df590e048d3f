import type { DependencyContainer } from 'tsyringe';

/**
 * A typed DI token: a unique symbol that remembers the type it resolves to. Use with tsyringe's
 * `@inject(token)` and `container.register(token, ...)`; resolve with {@link resolveToken}.
 */
export type Token<T> = symbol & { readonly __type?: T };

/** Creates a typed token with a stable id `'<package>.<name>'` (e.g. `'core.quota'`). */
export function createToken<T>(id: string): Token<T> {
  return Symbol.for(`nova-lfs:${id}`) as Token<T>;
}

/** Resolves a typed token from a container. */
export function resolveToken<T>(container: DependencyContainer, token: Token<T>): T {
  return container.resolve<T>(token);
}

/** Registers a value under a typed token. */
export function provideValue<T>(container: DependencyContainer, token: Token<T>, value: T): void {
  container.register<T>(token, { useValue: value });
}
