/**
 * A bridge's controllers (the Bridge `controller` column's Controller rows),
 * as OVS connects them: an active target (`tcp:IP:PORT`, `unix:PATH`) is
 * dialled and redialled after a loss with a backoff doubling from 1 s up to
 * the row's `max_backoff` (default 8 s); a passive one (`ptcp:PORT[:IP]`,
 * `punix:PATH`) listens and serves every controller that connects. Each
 * connection is an OfConnection of kind 'controller' (it takes packet-ins
 * from the start), registered with the ConnMgr.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ControllerConfig } from './config.ts';
import type { ConnMgr } from './connmgr.ts';
import type { FlowService } from './flow-service.ts';
import { OfConnection } from './ofconn.ts';

/** What is written back to the Controller row. */
export interface ControllerStatus {
  isConnected: boolean;
  /** OVS's Controller.role: "other" (equal), "master" or "slave", as the controller asked. */
  role: 'other' | 'master' | 'slave';
  state: 'ACTIVE' | 'BACKOFF' | 'CONNECTING' | 'LISTENING';
  /** Why the last attempt failed, if it did. */
  lastError?: string;
}

export interface ControllerDeps {
  bridge: string;
  service: FlowService;
  connmgr: ConnMgr;
  log: Logger;
  /** Called when a connection comes or goes (the status is written back). */
  changed: () => void;
}

type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses `tcp:IP[:PORT]`, `ptcp:PORT[:IP]`, `unix:PATH`, `punix:PATH` (OpenFlow's default port 6653). */
export function parseTarget(target: string): { passive: boolean; endpoint: Endpoint } | undefined {
  const m = /^(p?)(tcp|unix):(.*)$/.exec(target);
  if (!m) return undefined;
  const passive = m[1] === 'p';
  if (m[2] === 'unix') return m[3] ? { passive, endpoint: { kind: 'unix', path: m[3] } } : undefined;
  const parts = m[3].split(':');
  const num = (s: string | undefined) => (s === undefined || s === '' ? 6653 : /^\d+$/.test(s) && Number(s) < 65536 ? Number(s) : NaN);
  const port = passive ? num(parts[0]) : num(parts[1]);
  const host = passive ? parts[1] || '0.0.0.0' : parts[0];
  if (Number.isNaN(port) || !host) return undefined;
  return { passive, endpoint: { kind: 'tcp', host, port } };
}

export class ControllerLink {
  private readonly sockets = new Map<Socket, OfConnection>();
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private stopped = false;
  private state: ControllerStatus['state'] = 'CONNECTING';
  private lastError: string | undefined;

  constructor(
    readonly cfg: ControllerConfig,
    private readonly d: ControllerDeps,
  ) {
    const t = parseTarget(cfg.target);
    if (!t) {
      this.state = 'BACKOFF';
      this.lastError = `${cfg.target}: not a controller target nvs understands (tcp:, ptcp:, unix:, punix:)`;
      d.log.warn({ bridge: d.bridge, target: cfg.target }, 'unsupported controller target');
      return;
    }
    if (t.passive) this.listen(t.endpoint);
    else this.dial(t.endpoint);
  }

  status(): ControllerStatus {
    const conn = [...this.sockets.values()][0];
    return { isConnected: conn !== undefined, role: conn?.dbRole ?? 'other', state: conn ? 'ACTIVE' : this.state, lastError: this.lastError };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const s of this.sockets.keys()) s.destroy();
    this.server?.close();
    const t = parseTarget(this.cfg.target);
    if (t?.passive && t.endpoint.kind === 'unix' && existsSync(t.endpoint.path)) unlinkSync(t.endpoint.path);
  }

  private serve(socket: Socket): void {
    const conn = new OfConnection(socket, {
      bridge: this.d.bridge,
      service: this.d.service,
      log: this.d.log,
      now: () => Date.now(),
      connmgr: this.d.connmgr,
      kind: 'controller',
      roleChanged: this.d.changed,
    });
    this.sockets.set(socket, conn);
    this.d.log.info({ bridge: this.d.bridge, target: this.cfg.target }, 'connected to controller');
    this.d.changed();
  }

  private dial(ep: Endpoint): void {
    if (this.stopped) return;
    this.state = 'CONNECTING';
    const socket = ep.kind === 'tcp' ? connect(ep.port, ep.host) : connect(ep.path);
    socket.once('connect', () => {
      this.backoffMs = 0;
      this.lastError = undefined;
      this.serve(socket);
    });
    socket.on('error', (err) => (this.lastError = err.message));
    socket.once('close', () => {
      const was = this.sockets.delete(socket);
      if (was) this.d.log.info({ bridge: this.d.bridge, target: this.cfg.target }, 'controller connection closed');
      if (this.stopped) return;
      // Back off: 1 s, then doubling up to max_backoff, as OVS's rconn.
      this.backoffMs = Math.min(this.cfg.maxBackoffMs, this.backoffMs ? this.backoffMs * 2 : 1000);
      this.state = 'BACKOFF';
      this.timer = setTimeout(() => this.dial(ep), this.backoffMs);
      this.d.changed();
    });
  }

  private listen(ep: Endpoint): void {
    const server = createServer((s) => {
      s.once('close', () => {
        this.sockets.delete(s);
        this.d.changed();
      });
      this.serve(s);
    });
    this.server = server;
    server.on('error', (err) => {
      this.lastError = err.message;
      this.state = 'BACKOFF';
      this.d.log.warn({ bridge: this.d.bridge, target: this.cfg.target, err: err.message }, 'controller listener failed');
      this.d.changed();
    });
    if (ep.kind === 'unix' && existsSync(ep.path)) unlinkSync(ep.path);
    const done = () => {
      this.state = 'LISTENING';
      this.d.changed();
    };
    if (ep.kind === 'tcp') server.listen(ep.port, ep.host, done);
    else server.listen(ep.path, done);
  }
}

/** Keeps each bridge's links in step with its configured controllers. */
export class Controllers {
  private readonly links = new Map<string, Map<string, ControllerLink>>();

  constructor(private readonly deps: Omit<ControllerDeps, 'bridge'>) {}

  /** Starts links for new targets, stops those no longer configured (a changed target or backoff restarts the link). */
  reconcile(bridge: string, configs: readonly ControllerConfig[]): void {
    let mine = this.links.get(bridge);
    if (!mine) this.links.set(bridge, (mine = new Map()));
    const wanted = new Map(configs.map((c) => [c.uuid, c]));
    for (const [uuid, link] of mine) {
      const c = wanted.get(uuid);
      if (!c || c.target !== link.cfg.target || c.maxBackoffMs !== link.cfg.maxBackoffMs) {
        link.stop();
        mine.delete(uuid);
      }
    }
    for (const c of configs) if (!mine.has(c.uuid)) mine.set(c.uuid, new ControllerLink(c, { ...this.deps, bridge }));
    if (mine.size === 0) this.links.delete(bridge);
  }

  /** Every controller row's status, by uuid. */
  statuses(): Map<string, ControllerStatus> {
    const out = new Map<string, ControllerStatus>();
    for (const mine of this.links.values()) for (const [uuid, link] of mine) out.set(uuid, link.status());
    return out;
  }

  stopAll(): void {
    for (const b of [...this.links.keys()]) this.reconcile(b, []);
  }
}
