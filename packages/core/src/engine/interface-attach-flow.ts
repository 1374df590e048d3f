import { z } from 'zod';
import { ConfigurationError } from '../errors.js';
import type { RequestContext } from '../model/action.js';
import type { AttachedPort, Instance } from '../model/instance.js';
import { idSchema } from '../model/names.js';
import { parseInput } from '../model/validation.js';
import { type ComputeDriver, type InterfaceAttachable, supportsInterfaceAttach } from '../ports/driver.js';
import type { NetworkAdapter, PortBinding } from '../ports/network.js';
import type { ActionFlow } from './action-flow.js';
import type { EngineContext } from './engine-context.js';
import { HotPlugFlow, type HotPlugKind } from './hot-plug-flow.js';

/**
 * What `compute.attachInterface` takes: a new port on `networkId`, or the existing port `portId`
 * (not both, as in Nova). Neither lets the NetworkAdapter choose the network.
 */
export const interfaceAttachRequestSchema = z
  .strictObject({
    /** A network the adapter makes a new port on. */
    networkId: idSchema.optional(),
    /** A port made beforehand (the adapter binds it and keeps it on detach). */
    portId: idSchema.optional(),
  })
  .refine((r) => !(r.networkId && r.portId), {
    path: ['portId'],
    message: 'give networkId or portId, not both',
  });
/** What `compute.attachInterface` takes. */
export type InterfaceAttachRequest = z.input<typeof interfaceAttachRequestSchema>;
type InterfaceAttachInput = z.output<typeof interfaceAttachRequestSchema>;

/** The record kept of a bound port: a copy of the adapter's binding. */
export function attachedPortOf(port: PortBinding): AttachedPort {
  return {
    portId: port.portId,
    networkId: port.networkId,
    ...(port.macAddress ? { macAddress: port.macAddress } : {}),
    ...(port.ipAddresses ? { ipAddresses: [...port.ipAddresses] } : {}),
    ...(port.binding ? { binding: { ...port.binding } } : {}),
  };
}

/**
 * Network interfaces attached to and detached from an instance that runs (or is paused or
 * stopped) on its host (Nova's `os-interface`): the NetworkAdapter binds a port, the driver
 * hot-plugs it (`InterfaceAttachable`), and `instance.ports` records the binding (the same one a
 * detach hands the driver). The adapter's refusals (an unknown network or port, a port bound
 * elsewhere, no address left) and a driver failure leave no port bound; see {@link HotPlugFlow}.
 */
export class InterfaceAttachFlow {
  private readonly flow: HotPlugFlow<InterfaceAttachInput, AttachedPort, ComputeDriver & InterfaceAttachable>;

  constructor(ctx: EngineContext, actions: ActionFlow) {
    this.flow = new HotPlugFlow(ctx, actions, interfaceHotPlug(ctx));
  }

  /** See `ComputeEngine.attachInterface`. */
  attach(id: string, input: InterfaceAttachRequest, request?: RequestContext): Promise<Instance> {
    return this.flow.attach(id, parseInput(interfaceAttachRequestSchema, input), request);
  }

  /** See `ComputeEngine.detachInterface`. */
  detach(id: string, portId: string, request?: RequestContext): Promise<Instance> {
    return this.flow.detach(id, portId, request);
  }
}

/** Network ports as a hot-plugged kind of device: the engine's NetworkAdapter and `InterfaceAttachable`. */
export function interfaceHotPlug(
  ctx: EngineContext,
): HotPlugKind<InterfaceAttachInput, AttachedPort, ComputeDriver & InterfaceAttachable> {
  const network = () => ctx.deps.network;
  return {
    attachAction: 'attach_interface',
    detachAction: 'detach_interface',
    supports: supportsInterfaceAttach,
    field: 'portId',
    noun: 'port',
    recorded: (i) => i.ports ?? [],
    record: (ports) => ({ ports }),
    keyOf: (p) => p.portId,
    requestedKey: (req) => req.portId,
    acquire: (instance, _hostId, req) => allocateOne(network(), instance, req),
    release: (instance, _hostId, portId) => network().deallocate(instance, [portId]),
    plug: async (driver, instance, port) => {
      await driver.attachInterface(instance, port);
      return port;
    },
    unplug: (driver, instance, port) => driver.detachInterface(instance, port),
  };
}

/** Asks the adapter for one port (nothing is left bound when it hands back something else). */
async function allocateOne(
  network: NetworkAdapter,
  instance: Instance,
  req: InterfaceAttachInput,
): Promise<AttachedPort> {
  const ports = await network.allocate(instance, [
    { ...(req.networkId ? { networkId: req.networkId } : {}), ...(req.portId ? { portId: req.portId } : {}) },
  ]);
  const port = ports[0];
  if (port && ports.length === 1 && (!req.portId || port.portId === req.portId)) return attachedPortOf(port);
  if (ports.length)
    await network
      .deallocate(
        instance,
        ports.map((p) => p.portId),
      )
      .catch(() => undefined);
  throw new ConfigurationError(
    'network',
    `the engine's network adapter bound ${ports.length} ports for one interface (is a NetworkAdapter configured?)`,
  );
}
