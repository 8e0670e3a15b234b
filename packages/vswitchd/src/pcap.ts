/**
 * `parse-pcap`: the flow of each packet of a pcap file, printed in the
 * layout of `ovs-ofctl parse-pcap`. Keys come from the datapath's own
 * extractor (through the Dpif), so this shows exactly what the fast path
 * would match on; the text is ofproto's flow printer with parse-pcap's
 * differences (no input port, TCP flags by name, the inner VLAN slot).
 */
import { readFileSync } from 'node:fs';
import { formatFlow } from '@nvs/ofproto';
import type { Dpif } from './dpif.ts';
import { flowFromKey } from './keyflow.ts';

/** Thrown when a file is not a pcap capture nvs can read. */
export class PcapError extends Error {
  readonly code = 'PCAP_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'PcapError';
  }
}

const OFPP_NONE = 0xffff;
const TCP_FLAG_NAMES = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr', 'ns'];

/** A classic little-endian pcap file (Ethernet, microseconds, zero timestamps) holding `packets`. */
export function writePcap(packets: readonly Uint8Array[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const parts = [head];
  for (const p of packets) {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(p.length, 8);
    h.writeUInt32LE(p.length, 12);
    parts.push(h, Buffer.from(p));
  }
  return Buffer.concat(parts);
}

/**
 * The packets of a classic pcap file (either byte order, micro- or
 * nanosecond). As ovs-ofctl, a record cut short (a capture still being
 * written, or killed) or an empty one ends the capture: the packets before
 * it are returned and `warn` says why reading stopped.
 */
export function readPcap(buf: Buffer, file = 'pcap', warn: (message: string) => void = () => {}): Uint8Array[] {
  if (buf.length < 24) throw new PcapError(`${file}: too short for a pcap header`);
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) {
    throw new PcapError(`${file}: not a pcap file (bad magic number 0x${magic.toString(16)}; pcapng is not supported)`);
  }
  const u32 = (off: number) => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  if (u32(20) !== 1) throw new PcapError(`${file}: link type ${u32(20)} is not Ethernet`);
  const packets: Uint8Array[] = [];
  for (let off = 24; off + 16 <= buf.length; ) {
    const len = u32(off + 8);
    if (len === 0 || off + 16 + len > buf.length) {
      warn(`${file}: ${len === 0 ? 'empty' : 'truncated'} packet record at byte ${off}: the capture ends there`);
      break;
    }
    packets.push(buf.subarray(off + 16, off + 16 + len));
    off += 16 + len;
  }
  return packets;
}

/** TCP flags as OVS names them; the three bits without a name as hex in brackets (`[800]`). */
function tcpFlagNames(v: number): string {
  const names = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].filter((i) => v & (1 << i)).map((i) => TCP_FLAG_NAMES[i] ?? `[${(1 << i).toString(16)}]`);
  return names.length ? names.join('|') : '0';
}

/** One packet's flow as `ovs-ofctl parse-pcap` prints it. */
export function pcapFlowText(dpif: Pick<Dpif, 'extractKey'>, packet: Uint8Array): string {
  const key = dpif.extractKey(packet, 0);
  return formatFlow(flowFromKey(key, OFPP_NONE))
    .replace(`in_port=${OFPP_NONE}`, 'in_port=ANY')
    .replace(/tcp_flags=(0x[0-9a-f]+|0)/, (_m, v: string) => `tcp_flags=${tcpFlagNames(Number(v))}`);
}

/** The parse-pcap output of a whole file (`warn` as for readPcap). */
export function parsePcapFile(file: string, dpif: Pick<Dpif, 'extractKey'>, warn?: (message: string) => void): string {
  const packets = readPcap(readFileSync(file), file, warn);
  return packets.map((p) => `${pcapFlowText(dpif, p)}\n`).join('');
}
