/** One host's verdict in an explained placement. */
export interface HostVerdict {
  readonly hostId: string;
  readonly cell: string;
  readonly passed: boolean;
  /** The first filter that rejected the host, and its reasons. */
  readonly rejectedBy?: string;
  readonly reasons?: readonly string[];
  /** Per scorer: raw score, normalised 0..1, and weighted contribution (feasible hosts only). */
  readonly scores?: Readonly<Record<string, { raw: number; normalized: number; weighted: number }>>;
  readonly total?: number;
}

/** Every host's verdict and score for one placement decision (`explain: true` or `explain()`). */
export interface PlacementExplanation {
  readonly profile: string;
  readonly hostsConsidered: number;
  /** Host chosen for the first instance of the request, if any. */
  readonly chosen: string | undefined;
  /** `filter -> reason -> hosts rejected`. */
  readonly rejections: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly hosts: readonly HostVerdict[];
}
