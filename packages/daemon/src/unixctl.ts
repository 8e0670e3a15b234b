/**
 * OVS's unixctl protocol: the management channel that `ovs-appctl` (and
 * `nvs-appctl`) use to talk to a running daemon. JSON-RPC 1.0 over a unix
 * socket; a request is `{"method":"<command>","params":["arg",…],"id":N}` and
 * the reply `{"result":"<text>","error":null,"id":N}`, or `{"result":null,
 * "error":"<text>","id":N}`. Errors are plain strings (not RFC 7047 error
 * objects): that is what ovs-appctl prints, so the server frames replies
 * itself on top of {@link JsonFramer} instead of JsonRpcConnection's
 * object-valued errors. The client side uses JsonRpcConnection as is.
 *
 * {@link UnixctlServer} keeps a registry of commands with their usage and
 * argument counts, and provides `list-commands`, `version`, `exit`,
 * `vlog/list` and `vlog/set` itself.
 *
 * ```ts
 * const server = new UnixctlServer({ path: '/run/nvs/nvs-vswitchd.ctl', log, vlog, version: 'nvs-vswitchd (nvs) 0.1.0', onExit });
 * server.register('fdb/flush', '[bridge]', 0, 1, (args) => flush(args[0]));
 * await server.listen();
 * ```
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { JsonFramer, JsonRpcConnection, JsonRpcRemoteError } from '@nvs/jsonrpc';
import type { VLog } from './daemon.ts';

/** Thrown for unixctl failures on either side, with a stable code. */
export class UnixctlError extends Error {
  constructor(
    readonly code: 'UNIXCTL_COMMAND' | 'UNIXCTL_SOCKET_IN_USE' | 'UNIXCTL_CONNECT' | 'UNIXCTL_REMOTE' | 'UNIXCTL_DUPLICATE',
    message: string,
  ) {
    super(message);
    this.name = 'UnixctlError';
  }
}

/**
 * Runs one command. The returned text is the reply; a thrown error's message
 * becomes the error text that ovs-appctl prints (exit status 2).
 */
export type UnixctlHandler = (args: string[]) => string | Promise<string>;

interface Command {
  usage: string;
  min: number;
  max: number;
  handler: UnixctlHandler;
}

export interface UnixctlServerOptions {
  /** Socket path; a stale socket file there is replaced, a live one is an error. */
  path: string;
  log: Logger;
  /** The `version` reply, e.g. `nvs-vswitchd (nvs) 0.1.0`. */
  version: string;
  /** Logging levels for `vlog/list` and `vlog/set`; omitted means no vlog commands. */
  vlog?: VLog;
  /** Called after the reply to `exit` has been written. */
  onExit?: () => void;
  /** Shown each accepted connection before anything reads it (ovsdb-server's --record writes it down). */
  onAccept?: (socket: Socket) => void;
  /** `exit` also takes ovs-vswitchd's `--cleanup` (the daemon's ports and datapath go with it either way). */
  exitCleanup?: boolean;
}

const MAX_REQUEST_BYTES = 1024 * 1024;

export class UnixctlServer {
  private readonly commands = new Map<string, Command>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  constructor(private readonly opts: UnixctlServerOptions) {
    this.register('list-commands', '', 0, 0, () => this.listCommands());
    this.register('version', '', 0, 0, () => `${opts.version}\n`);
    if (opts.onExit) {
      const onExit = opts.onExit;
      const cleanup = opts.exitCleanup === true;
      this.register('exit', cleanup ? '[--cleanup]' : '', 0, cleanup ? 1 : 0, (args) => {
        if (args.length > 0 && args[0] !== '--cleanup') throw new UnixctlError('UNIXCTL_COMMAND', `unknown option "${args[0]}"`);
        setImmediate(onExit);
        return '';
      });
    }
    if (opts.vlog) {
      const vlog = opts.vlog;
      this.register('vlog/list', '', 0, 0, () => vlog.list());
      this.register('vlog/set', '{spec | PATTERN:destination:pattern}', 1, Infinity, (args) => {
        for (const spec of args) vlog.set(spec);
        return '';
      });
    }
  }

  get path(): string {
    return this.opts.path;
  }

  /** Adds a command; `max` may be Infinity. Registering a name twice is a programming error. */
  register(name: string, usage: string, min: number, max: number, handler: UnixctlHandler): void {
    if (this.commands.has(name)) throw new UnixctlError('UNIXCTL_DUPLICATE', `unixctl command "${name}" registered twice`);
    this.commands.set(name, { usage, min, max, handler });
  }

  /** Runs a command as if it came from the socket (for in-process callers and tests). */
  async run(method: string, params: unknown): Promise<string> {
    const cmd = this.commands.get(method);
    if (!cmd) {
      throw new UnixctlError('UNIXCTL_COMMAND', `"${method}" is not a valid command (use "list-commands" to see a list of valid commands)`);
    }
    if (!Array.isArray(params) || params.some((p) => typeof p !== 'string')) {
      throw new UnixctlError('UNIXCTL_COMMAND', `"${method}": arguments must be an array of strings`);
    }
    if (params.length < cmd.min) {
      throw new UnixctlError('UNIXCTL_COMMAND', `"${method}" command requires at least ${cmd.min} arguments`);
    }
    if (params.length > cmd.max) {
      throw new UnixctlError('UNIXCTL_COMMAND', `"${method}" command takes at most ${cmd.max} arguments`);
    }
    return cmd.handler(params as string[]);
  }

  /** Starts listening; resolves once the socket accepts connections. */
  async listen(): Promise<void> {
    await removeStaleSocket(this.opts.path);
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.log.error({ err: err.message }, 'unixctl server error'));
  }

  /** Stops listening, drops connections and removes the socket file. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private listCommands(): string {
    const names = [...this.commands.keys()].sort();
    const lines = names.map((n) => {
      const usage = this.commands.get(n)!.usage;
      return usage ? `  ${n.padEnd(23)} ${usage}` : `  ${n}`;
    });
    return `The available commands are:\n${lines.join('\n')}\n`;
  }

  /** Serves one connected socket: used by the listener, and by ovsdb-server's --replay with a socket of its own. */
  accept(socket: Socket): void {
    this.opts.onAccept?.(socket);
    this.sockets.add(socket);
    const framer = new JsonFramer(MAX_REQUEST_BYTES);
    const log = this.opts.log;
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err: err.message }, 'unixctl connection error'));
    socket.on('data', (chunk: Buffer) => {
      let texts: string[];
      try {
        texts = framer.push(chunk);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'closing unixctl connection: bad framing');
        socket.destroy();
        return;
      }
      for (const text of texts) this.onMessage(socket, text);
    });
  }

  private onMessage(socket: Socket, text: string): void {
    let msg: { method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(text);
    } catch {
      this.opts.log.warn('closing unixctl connection: malformed JSON');
      socket.destroy();
      return;
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.method !== 'string' || msg.id === undefined || msg.id === null) {
      this.opts.log.warn('closing unixctl connection: not a JSON-RPC request');
      socket.destroy();
      return;
    }
    const id = msg.id;
    const method = msg.method;
    const reply = (body: { result: string | null; error: string | null }) => {
      if (!socket.destroyed) socket.write(JSON.stringify({ ...body, id }));
    };
    this.opts.log.debug({ method, params: msg.params }, 'unixctl request');
    this.run(method, msg.params ?? []).then(
      (result) => reply({ result, error: null }),
      (err: unknown) => {
        if (!(err instanceof Error && 'code' in err)) this.opts.log.error({ method, err }, 'unixctl command failed unexpectedly');
        const text = err instanceof Error ? err.message : String(err);
        reply({ result: null, error: text.endsWith('\n') ? text : `${text}\n` });
      },
    );
  }
}

/** Removes a leftover socket file nobody listens on; a live one is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new UnixctlError('UNIXCTL_SOCKET_IN_USE', `${path}: another process is already listening on this socket`);
  unlinkSync(path);
}

/**
 * Sends one command to a unixctl server and returns the reply text. Throws
 * UNIXCTL_CONNECT when nothing listens at `path` and UNIXCTL_REMOTE with the
 * server's error text when the command fails.
 */
export async function unixctlCall(path: string, method: string, args: string[], log: Logger = pino({ level: 'silent' })): Promise<string> {
  const socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UnixctlError('UNIXCTL_CONNECT', `cannot connect to "${path}" (${err.code ?? err.message}); is the daemon running?`)),
    );
  });
  const conn = new JsonRpcConnection(socket, { log, name: `unix:${path}` });
  try {
    const result = await conn.request(method, args);
    return typeof result === 'string' ? result : JSON.stringify(result);
  } catch (err) {
    if (err instanceof JsonRpcRemoteError) {
      const text = typeof err.remote === 'string' ? err.remote : JSON.stringify(err.remote);
      throw new UnixctlError('UNIXCTL_REMOTE', text.replace(/\n$/, ''));
    }
    throw err;
  } finally {
    conn.close();
  }
}
