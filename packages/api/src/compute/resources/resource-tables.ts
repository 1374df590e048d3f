/** API-only attributes of a flavor (the engine's flavor store has no such fields). */
export type FlavorAttrsRow = {
  flavor_id: string;
  description: string | null;
  is_public: number;
  swap: number;
  ephemeral: number;
  rxtx_factor: number;
  disabled: number;
};

/** One project allowed to use a private flavor. */
export type FlavorAccessRow = {
  flavor_id: string;
  project_id: string;
};

/** The stable Nova ids of a compute node or service (`hypervisor:<host>`, `service:<binary>:<host>`). */
export type HostIdRow = {
  key: string;
  /** `hypervisor` or `service`: each kind numbers its own (as Nova's tables do). */
  kind: string;
  num: number;
  uuid: string;
};

/** A host aggregate (Nova's integer id; `metadata` a JSON object, `availability_zone` in it). */
export type AggregateRow = {
  id: number;
  uuid: string;
  name: string;
  metadata: string;
  created_at: string;
  updated_at: string | null;
};

/** A host in an aggregate (the host's engine id, Nova's service host). */
export type AggregateHostRow = {
  aggregate_id: number;
  host_id: string;
};

/** A project's limit of a quota key the engine does not enforce (`key_pairs`, `server_groups`...). */
export type QuotaRow = {
  project_id: string;
  resource: string;
  hard_limit: number;
};

/** What Nova shows of a server group that the engine's group does not keep. */
export type ServerGroupAttrsRow = {
  group_id: string;
  user_id: string;
  /** JSON object, e.g. `{"max_server_per_host": 2}`. */
  rules: string;
};

/** A user's key pair (the public half only; a generated private key is never stored). */
export type KeypairRow = {
  id: number;
  user_id: string;
  name: string;
  /** `ssh` or `x509`. */
  type: string;
  public_key: string;
  fingerprint: string;
  created_at: string;
};

/** Every table of the compute resource routes. */
export type ComputeResourceTables = {
  compute_flavor_attrs: FlavorAttrsRow;
  compute_flavor_access: FlavorAccessRow;
  compute_host_ids: HostIdRow;
  compute_aggregate: AggregateRow;
  compute_aggregate_host: AggregateHostRow;
  compute_quota: QuotaRow;
  compute_server_group_attrs: ServerGroupAttrsRow;
  compute_keypair: KeypairRow;
};
