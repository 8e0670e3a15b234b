/**
 * @nvs/vswitchd — the daemon that turns the Open_vSwitch database into a
 * working switch: bridge reconciliation from the IDL, one Ofproto per
 * bridge, upcall handling and revalidation over the Rust datapath, the
 * appctl socket and per-bridge flow-management sockets.
 *
 * ```ts
 * import { Vswitchd, NvsDpif } from '@nvs/vswitchd';
 * const sw = new Vswitchd({ vlog, rundir, remote: `unix:${rundir}/db.sock`, openDpif: (o) => NvsDpif.open(o) });
 * await sw.start();   // appctl on <rundir>/nvs-vswitchd.ctl, <bridge>.mgmt per bridge
 * await sw.stop();
 * ```
 */
export { Vswitchd, VERSION, type VswitchdComponents } from './vswitchd.ts';
export { NvsDpif, DpifError } from './dpif-nvs.ts';
export { parseVswitchdArgs, USAGE, type VswitchdArgs } from './args.ts';
export { buildPacket, parseHexPacket, type PacketFields } from './packet.ts';
export { parsePcapFile, readPcap, writePcap, PcapError } from './pcap.ts';
export { FlowServiceError } from './flow-service.ts';
export type { Dpif, DpifOptions, DpUpcall } from './dpif.ts';
export { chooseInternalPorts, tapUnavailable, type InternalPortsChoice } from './internal-ports.ts';
