/**
 * Value notations of ovs-ofctl's flow syntax, both ways: integers (decimal,
 * `0x` hex, C-style octal with a leading 0), Ethernet addresses, IPv4 and
 * IPv6 addresses with prefixes or masks, and the matching printers (IPv6
 * printed the way inet_ntop does, which is what ovs-ofctl shows).
 *
 * Parsers throw `ValueError` with a message naming the bad text; the rule
 * parser adds the file:line:column.
 */

/** A malformed value; the caller knows where it was. */
export class ValueError extends Error {}

const HEX_RE = /^0[xX][0-9a-fA-F]*$/;
const DEC_RE = /^[1-9][0-9]*$|^0$/;
const OCT_RE = /^0[0-7]+$/;

/**
 * An unsigned integer in C notation (what ovs-ofctl accepts): `80`, `0x50`,
 * `0120` (octal). Negative numbers and trailing junk are errors.
 */
export function parseUint(text: string): bigint {
  if (DEC_RE.test(text)) return BigInt(text);
  if (HEX_RE.test(text)) return text.length === 2 ? 0n : BigInt(text);
  if (OCT_RE.test(text)) return BigInt('0o' + text.slice(1));
  throw new ValueError(`'${text}' is not a number (expected decimal or 0x hex)`);
}

/** `parseUint` for values that must fit in 64 bits (`what` names the value in the message). */
export function parseU64(text: string, what: string): bigint {
  const v = parseUint(text);
  if (v >= 1n << 64n) throw new ValueError(`${what} '${text}' does not fit in 64 bits`);
  return v;
}

/** `parseUint` for values that must fit in `bits` bits (≤ 53), as a number. */
export function parseUintN(text: string, bits: number, what: string): number {
  // Fast path for short decimal strings, the common case in big rule files.
  let v: number;
  if (text.length > 0 && text.length < 10 && DEC_RE.test(text)) v = Number(text);
  else {
    const b = parseUint(text);
    if (b >= 1n << BigInt(bits)) throw new ValueError(`${what} '${text}' is out of range (max ${2 ** bits - 1})`);
    v = Number(b);
  }
  if (v >= 2 ** bits) throw new ValueError(`${what} '${text}' is out of range (max ${2 ** bits - 1})`);
  return v;
}

/** TCP flag names in bit order (bit 0 is fin), as ovs-ofctl names them. */
export const TCP_FLAG_NAMES = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr', 'ns'] as const;

/** A TCP flag bit's name; the reserved bits 9-11 print as `[200]`, `[400]`, `[800]`. */
function tcpFlagName(bit: number): string {
  return bit < TCP_FLAG_NAMES.length ? TCP_FLAG_NAMES[bit] : `[${(1 << bit).toString(16)}]`;
}

/** TCP flags under a 12-bit mask: `syn|ack` when the mask is exact (`0` for none), else `+syn-ack`. */
export function formatTcpFlags(v: number, mask: number): string {
  if (mask === 0xfff) {
    if (v === 0) return '0';
    const names: string[] = [];
    for (let b = 0; b < 12; b++) if (v & (1 << b)) names.push(tcpFlagName(b));
    return names.join('|');
  }
  let s = '';
  for (let b = 0; b < 12; b++) if (mask & (1 << b)) s += (v & (1 << b) ? '+' : '-') + tcpFlagName(b);
  return s;
}

/** `0x…` hex, or "0" for zero (the way ovs-ofctl prints hex values). */
export function hex(v: bigint | number): string {
  return v === 0 || v === 0n ? '0' : '0x' + v.toString(16);
}

/** Ethernet address `xx:xx:xx:xx:xx:xx` (1 or 2 hex digits per byte) as a 48-bit bigint. */
export function parseMac(text: string): bigint {
  const parts = text.split(':');
  if (parts.length !== 6) throw new ValueError(`'${text}' is not an Ethernet address (expected xx:xx:xx:xx:xx:xx)`);
  let v = 0n;
  for (const p of parts) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(p)) {
      throw new ValueError(`'${text}' is not an Ethernet address (expected xx:xx:xx:xx:xx:xx)`);
    }
    v = (v << 8n) | BigInt(parseInt(p, 16));
  }
  return v;
}

/** `00:11:22:33:44:55`. */
export function formatMac(v: bigint): string {
  let s = '';
  for (let i = 5; i >= 0; i--) {
    const b = Number((v >> BigInt(i * 8)) & 0xffn);
    s += (b < 16 ? '0' : '') + b.toString(16) + (i ? ':' : '');
  }
  return s;
}

/** Dotted-quad IPv4 address as a number; throws on anything else. */
export function parseIpv4(text: string): number {
  let v = 0;
  let octets = 0;
  let cur = -1;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      cur = (cur < 0 ? 0 : cur * 10) + (c - 48);
      if (cur > 255) throw new ValueError(`'${text}' is not an IPv4 address (octet above 255)`);
    } else if (c === 46 && cur >= 0 && octets < 4) {
      v = v * 256 + cur;
      octets++;
      cur = -1;
    } else {
      throw new ValueError(`'${text}' is not an IPv4 address (expected a.b.c.d)`);
    }
  }
  if (octets !== 4) throw new ValueError(`'${text}' is not an IPv4 address (expected a.b.c.d)`);
  return v;
}

/** `10.0.0.1`. */
export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The netmask of an IPv4 prefix length. */
export function ipv4PrefixMask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Prefix length if `mask` is a CIDR mask, else -1. */
export function ipv4PrefixLen(mask: number): number {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return -1;
  return 32 - Math.log2(inv + 1);
}

/** `a.b.c.d`, `a.b.c.d/N` or `a.b.c.d/m.m.m.m` as value and mask. */
export function parseIpv4Masked(text: string): { value: number; mask: number } {
  const slash = text.indexOf('/');
  if (slash < 0) return { value: parseIpv4(text), mask: 0xffffffff };
  const value = parseIpv4(text.slice(0, slash));
  const m = text.slice(slash + 1);
  if (m.includes('.')) return { value, mask: parseIpv4(m) };
  if (!/^[0-9]+$/.test(m) || Number(m) > 32) {
    throw new ValueError(`'${text}': IPv4 prefix length must be 0 to 32`);
  }
  return { value, mask: ipv4PrefixMask(Number(m)) };
}

/** An IPv6 address (with `::` and an optional trailing dotted quad) as a 128-bit bigint. */
export function parseIpv6(text: string): bigint {
  const bad = (): ValueError => new ValueError(`'${text}' is not an IPv6 address`);
  const side = (s: string, last: boolean): number[] => {
    if (s === '') return [];
    const parts = s.split(':');
    const out: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (last && i === parts.length - 1 && p.includes('.')) {
        let q: number;
        try {
          q = parseIpv4(p);
        } catch {
          throw bad();
        }
        out.push(q >>> 16, q & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        throw bad();
      }
    }
    return out;
  };
  const halves = text.split('::');
  let groups: number[];
  if (halves.length === 1) {
    groups = side(text, true);
    if (groups.length !== 8) throw bad();
  } else if (halves.length === 2) {
    const l = side(halves[0], false);
    const r = side(halves[1], true);
    if (l.length + r.length > 7) throw bad();
    groups = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  } else {
    throw bad();
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

/** `addr`, `addr/N` or `addr/mask` (IPv6) as value and mask. */
export function parseIpv6Masked(text: string): { value: bigint; mask: bigint } {
  const all = (1n << 128n) - 1n;
  const slash = text.indexOf('/');
  if (slash < 0) return { value: parseIpv6(text), mask: all };
  const value = parseIpv6(text.slice(0, slash));
  const m = text.slice(slash + 1);
  // Like ovs-ofctl: a mask that starts with a decimal digit is a prefix length.
  if (!/^[0-9]/.test(m)) return { value, mask: parseIpv6(m) };
  if (!/^[0-9]+$/.test(m) || Number(m) > 128) {
    throw new ValueError(`'${text}': IPv6 prefix length must be 0 to 128`);
  }
  const n = BigInt(Number(m));
  return { value, mask: n === 0n ? 0n : (all << (128n - n)) & all };
}

/** Prefix length if `mask` (of `bits` bits) is a CIDR mask, else -1. */
export function prefixLen(mask: bigint, bits: number): number {
  const all = (1n << BigInt(bits)) - 1n;
  const inv = ~mask & all;
  if ((inv & (inv + 1n)) !== 0n) return -1;
  return bits - (inv + 1n).toString(2).length + 1;
}

/**
 * An IPv6 address as inet_ntop prints it: lowercase, the longest run of two
 * or more zero groups as `::` (the first such run on ties), and
 * IPv4-compatible / IPv4-mapped addresses with a dotted quad.
 */
export function formatIpv6(v: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestAt = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      s += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    if (i === 6 && bestAt === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      const q = Number(v & 0xffffffffn);
      return s + formatIpv4(q);
    }
    s += g[i].toString(16) + (i < 7 ? ':' : '');
  }
  return s;
}
