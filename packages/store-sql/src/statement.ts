import type { Compilable } from 'kysely';

/** A statement ready to run: SQL text in the dialect's placeholder style and its parameters. */
export interface BoundStatement {
  readonly sql: string;
  readonly parameters: readonly unknown[];
  /**
   * The statement locks rows that many concurrent operations share (a host's generation and
   * usage): an executor that batches statements never runs two batches of such statements at
   * once, so two of its own transactions cannot take those locks in opposite orders (deadlock).
   */
  readonly contended?: boolean;
}

const SLOT = '\u0000nlfs-param:';

type Slot = { readonly name: string } | { readonly value: unknown };

/**
 * A statement built with Kysely and compiled once; {@link PreparedStatement.bind} fills its named
 * parameters. The hot paths of the stores run the same few statements thousands of times a
 * second: building and compiling a Kysely query each time costs more than SQLite running it.
 */
export class PreparedStatement<P extends Record<string, unknown>> {
  private constructor(
    readonly sql: string,
    private readonly slots: readonly Slot[],
    private readonly contended: boolean,
  ) {}

  /**
   * Compiles `build`, whose parameters are placeholders obtained from `p(name)`. Values written
   * directly into the query stay constant. `contended`: see {@link BoundStatement.contended}.
   */
  static of<P extends Record<string, unknown>>(
    build: (p: <K extends keyof P & string>(name: K) => P[K]) => Compilable<unknown>,
    options: { readonly contended?: boolean } = {},
  ): PreparedStatement<P> {
    const compiled = build(((name: string) => `${SLOT}${name}`) as never).compile();
    const slots = compiled.parameters.map(
      (v): Slot =>
        typeof v === 'string' && v.startsWith(SLOT) ? { name: v.slice(SLOT.length) } : { value: v },
    );
    return new PreparedStatement<P>(compiled.sql, slots, options.contended ?? false);
  }

  /** The statement with `params` in place of its placeholders. */
  bind(params: P): BoundStatement {
    const parameters = this.slots.map((s) => ('name' in s ? params[s.name] : s.value));
    return this.contended ? { sql: this.sql, parameters, contended: true } : { sql: this.sql, parameters };
  }
}
