/**
 * `nvs-ofctl parse-pcap FILE...`, answered in this process with no daemon,
 * as ovs-ofctl's is: reading a capture offline needs no switch. The flows
 * come from the datapath's own key extraction (the addon, which main.ts
 * loads only for this command) printed as `ovs-ofctl parse-pcap` prints them.
 */
import { parsePcapFile, PcapError } from '@nvs/vswitchd';
import { OfctlError } from './main.ts';

/** The parse-pcap output of `files`, in order; `warn` hears of a capture that ends early. */
export function parsePcapFiles(files: readonly string[], warn: (message: string) => void): string {
  return files
    .map((file) => {
      try {
        return parsePcapFile(file, warn);
      } catch (err) {
        if (err instanceof PcapError) throw new OfctlError('OFCTL_IO', err.message);
        const e = err as NodeJS.ErrnoException;
        if (e.syscall === 'open') throw new OfctlError('OFCTL_IO', `${file}: open failed (${e.code === 'ENOENT' ? 'No such file or directory' : e.code})`);
        throw err;
      }
    })
    .join('');
}
