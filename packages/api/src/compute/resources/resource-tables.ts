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

/** A host aggregate as the API keeps it (hosts and metadata as JSON text). */
export type AggregateRow = {
  id: number;
  uuid: string;
  name: string;
  availability_zone: string | null;
  hosts: string;
  metadata: string;
  created_at: string;
  updated_at: string | null;
};

/** API-only attributes of a server group (the engine keeps id, name, project, policy, members). */
export type ServerGroupAttrsRow = {
  group_id: string;
  user_id: string;
  rules: string;
};

/** A quota limit the engine does not enforce (metadata_items, key_pairs, ...). */
export type QuotaExtraRow = {
  project_id: string;
  resource: string;
  hard_limit: number;
};

/** A key pair. */
export type KeypairRow = {
  id: number;
  user_id: string;
  name: string;
  type: string;
  public_key: string;
  fingerprint: string;
  created_at: string;
};

/** The stable integer a host has in pre-2.53 answers. */
export type HostNumberRow = {
  host_id: string;
  num: number;
};

/** Every table of the compute resource routes. */
export type ComputeResourceTables = {
  compute_flavor_attrs: FlavorAttrsRow;
  compute_flavor_access: FlavorAccessRow;
  compute_aggregate: AggregateRow;
  compute_server_group_attrs: ServerGroupAttrsRow;
  compute_quota_extra: QuotaExtraRow;
  compute_keypair: KeypairRow;
  compute_host_number: HostNumberRow;
};
