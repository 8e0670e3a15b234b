/**
 * nvs-vswitchd as a component: wires the database link (DbSync), the bridge
 * model (Switch), the datapath, per-bridge ofproto instances, upcall
 * handling and revalidation, the appctl socket and the per-bridge management
 * sockets, with an explicit start/stop lifecycle. Everything it uses comes in
 * through VswitchdComponents, so a test can run two switches in one process.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { UnixctlServer, type VLog } from '@nvs/ovsdb';
import { Switch, type Bridge, type BridgeListener, type DatapathPorts } from './bridge.ts';
import type { SwitchConfig } from './config.ts';
import { Coverage } from './coverage.ts';
import { DbSync } from './dbsync.ts';

export const VERSION = '0.1.0';

export interface VswitchdComponents {
  vlog: VLog;
  rundir: string;
  /** Database remote, `unix:PATH`. */
  remote: string;
  /** appctl socket path (default `<rundir>/nvs-vswitchd.ctl`). */
  unixctlPath?: string;
  datapath: DatapathPorts;
  /** Called when `exit` is requested over appctl. */
  onExit?: () => void;
}

export class Vswitchd implements BridgeListener {
  readonly coverage = new Coverage();
  readonly switch: Switch;
  readonly unixctl: UnixctlServer;
  private readonly db: DbSync;
  private readonly log: Logger;
  private sampler: NodeJS.Timeout | undefined;

  constructor(private readonly c: VswitchdComponents) {
    this.log = c.vlog.logger('vswitchd');
    this.switch = new Switch(c.vlog.logger('bridge'), c.datapath, this);
    this.db = new DbSync({ remote: c.remote, log: c.vlog.logger('dbsync'), apply: (cfg) => this.apply(cfg) });
    this.unixctl = new UnixctlServer({
      path: c.unixctlPath ?? join(c.rundir, 'nvs-vswitchd.ctl'),
      log: c.vlog.logger('unixctl'),
      version: `nvs-vswitchd (nvs) ${VERSION}`,
      vlog: c.vlog,
      onExit: c.onExit,
    });
  }

  /** Opens the appctl socket, then connects to the database and applies its first configuration. */
  async start(): Promise<void> {
    await this.unixctl.listen();
    await this.db.start();
    await this.db.firstApplied;
    this.sampler = setInterval(() => this.coverage.sample(), 5000);
    this.sampler.unref();
    this.log.info({ rundir: this.c.rundir, remote: this.c.remote }, 'nvs-vswitchd started');
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await this.db.stop();
    await this.unixctl.close();
    this.switch.clear();
  }

  private apply(cfg: SwitchConfig) {
    this.coverage.inc('bridge_reconfigure');
    this.switch.reconcile(cfg);
    return this.switch.status;
  }

  bridgeAdded(bridge: Bridge): void {
    this.log.debug({ bridge: bridge.name }, 'bridge added');
  }

  bridgeRemoved(bridge: Bridge): void {
    this.log.debug({ bridge: bridge.name }, 'bridge removed');
  }

  bridgeChanged(bridge: Bridge): void {
    this.log.debug({ bridge: bridge.name }, 'bridge changed');
  }
}
