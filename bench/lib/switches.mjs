// A switch under test, nvs or an OVS anchor, started by bench/anchors/switch.sh
// (the one place that knows how), with ovs-vsctl and a unixctl client that
// keeps one connection open: polling a switch through a new ovs-appctl or
// nvs-appctl process each time would cost the 2-core machine more than the
// switch's own work.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SWITCH_SH = join(dirname(fileURLToPath(import.meta.url)), '..', 'anchors', 'switch.sh');

/**
 * What must be undone if the script is stopped (the runner's time bound
 * sends SIGTERM): the switches run detached, in sessions of their own, so
 * they outlive the script unless it stops them.
 */
const undo = new Set();
const onSignal = (sig) => {
  for (const f of [...undo].reverse()) {
    try {
      f();
    } catch {
      // keep undoing the rest
    }
  }
  process.exit(sig === 'SIGINT' ? 130 : 143);
};
process.once('SIGTERM', onSignal);
process.once('SIGINT', onSignal);

/** Runs `f` if the script is stopped by a signal before `forget()` is called on the returned handle. */
export function onStop(f) {
  undo.add(f);
  return { forget: () => undo.delete(f) };
}

export const haveOvs = () => {
  try {
    execFileSync('ovs-vswitchd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/**
 * Starts `kind` (nvs | ovs | ovs-dpdk) under `dir` with these Open_vSwitch
 * other_config pairs; with `netns`, the switch daemon runs in that network
 * namespace (OVS's userspace datapath makes a tap device named ovs-netdev,
 * which another OVS on a shared host may hold already).
 */
export function startSwitch(kind, dir, otherConfig = {}, { netns } = {}) {
  const out = execFileSync('bash', [SWITCH_SH, 'start', kind, dir, ...Object.entries(otherConfig).map(([k, v]) => `${k}=${v}`)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(netns ? { NETNS: netns } : {}) },
  });
  const env = Object.fromEntries(out.split('\n').filter((l) => /^[A-Z]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  let ctl;
  const stopping = onStop(() => execFileSync('bash', [SWITCH_SH, 'stop', dir], { stdio: 'ignore' }));
  return {
    kind,
    dir,
    db: env.DB,
    pid: Number(env.PID),
    vsctl: (...args) => execFileSync('ovs-vsctl', [`--db=${env.DB}`, '--timeout=60', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 }),
    /** One unixctl command over the kept connection; resolves with its text. */
    async appctl(method, ...params) {
      ctl ??= await Unixctl.open(env.CTL);
      return ctl.call(method, params);
    },
    rssKiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${env.PID}/status`, 'utf8'));
      return m ? Number(m[1]) : NaN;
    },
    stop() {
      ctl?.close();
      execFileSync('bash', [SWITCH_SH, 'stop', dir], { stdio: 'ignore' });
      stopping.forget();
    },
  };
}

/** A unixctl JSON-RPC client (what ovs-appctl speaks to both switches). */
class Unixctl {
  static open(path) {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Unixctl(s)));
      s.once('error', reject);
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.next = 0;
    this.waiting = new Map();
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      // Replies are single JSON objects; try to parse at each closing brace.
      for (let i = buf.indexOf('}'); i >= 0; i = buf.indexOf('}', i + 1)) {
        let msg;
        try {
          msg = JSON.parse(buf.slice(0, i + 1));
        } catch {
          continue;
        }
        buf = buf.slice(i + 1);
        i = -1;
        const w = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        if (msg.error) w?.reject(new Error(String(msg.error)));
        else w?.resolve(msg.result);
      }
    });
  }
  call(method, params) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ method, params, id }));
    });
  }
  close() {
    this.sock.destroy();
  }
}
