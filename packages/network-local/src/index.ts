/**
 * `@nova-lfs/network-local`: core's NetworkAdapter over configured IPv4 subnets, with IPAM and
 * ports persisted as JSON. No traffic leaves the host: no bridge, no DHCP, no routing.
 * @packageDocumentation
 */
export {
  bindingOf,
  type CreateLocalPort,
  type LocalNetwork,
  LocalNetworkAdapter,
  type LocalNetworkAdapterOptions,
  type LocalNetworkConfig,
  LocalNetworkStateError,
  type LocalPort,
  type LocalPortFilter,
} from './local-network-adapter.js';
