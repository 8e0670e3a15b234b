// Record and replay of nvs-dbserver's input (`--record[=DIR]`, `--replay[=DIR]`,
// as OVS's ovsdb-server has them): a recording run writes, in the order they
// happened, the uuid seed, the outcome of each listen (a port, or the error of
// a failed bind), each accepted connection and every chunk it received; a
// replay run opens no socket and feeds the same events to the same code, so
// it makes the same uuids, database file and log lines, and stops when the
// recorded `exit` unixctl command comes.
//
// The file (DIR/nvs-dbserver.replay) is nvs's own: a header line, then one
// JSON object per line. Only nvs reads it; a truncated or garbled file is a
// ReplayFileError (OVSDB_REPLAY_FILE) naming the line, found before anything
// is replayed.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { OvsdbError } from './errors.ts';

const HEADER = 'nvs-dbserver replay 1';
const FILE_NAME = 'nvs-dbserver.replay';

/** Which server a connection came to. */
export type StreamTarget = 'ovsdb' | 'unixctl';

type Event =
  | { seed: string }
  | { listen: string; port?: number; error?: string; code?: string }
  | { accept: number; target: StreamTarget; remote: string }
  | { data: number; base64: string }
  | { close: number };

/** Thrown when a replay file cannot be read, is garbled or truncated, or does not match the run. */
export class ReplayFileError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_REPLAY_FILE', 'I/O error', message);
  }
}

/** The replay file in DIR. */
export function replayFilePath(dir: string): string {
  return join(dir, FILE_NAME);
}

/** Writes the events of a recording run, each as it happens (synchronously, so a killed server leaves a usable file). */
export class StreamRecorder {
  private readonly fd: number;
  private nextStream = 0;
  private closed = false;
  readonly seed = randomBytes(16);

  constructor(dir: string) {
    this.fd = openSync(replayFilePath(dir), 'w');
    writeSync(this.fd, HEADER + '\n');
    this.write({ seed: this.seed.toString('hex') });
  }

  listened(remote: string, outcome: { port?: number; error?: Error }): void {
    const err = outcome.error as NodeJS.ErrnoException | undefined;
    this.write(err ? { listen: remote, error: err.message, code: err.code } : { listen: remote, port: outcome.port });
  }

  /** Records `socket` and what it receives; call before anything else reads it. */
  accepted(target: StreamTarget, remote: string, socket: Socket): void {
    const id = this.nextStream++;
    this.write({ accept: id, target, remote });
    socket.on('data', (chunk: Buffer) => this.write({ data: id, base64: chunk.toString('base64') }));
    socket.on('close', () => this.write({ close: id }));
  }

  close(): void {
    this.closed = true;
    closeSync(this.fd);
  }

  private write(e: Event): void {
    // Sockets closing as the server exits come after the recorded exit: nothing replays them.
    if (this.closed) return;
    writeSync(this.fd, JSON.stringify(e) + '\n');
  }
}

/** A listen that failed in the recording, failing again with the same message and code. */
export class ReplayedListenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Checks one parsed line; returns the event or a description of what is wrong. */
function toEvent(v: unknown): Event | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  const isId = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  if ('seed' in o) return typeof o.seed === 'string' && /^[0-9a-f]{32}$/.test(o.seed) ? (o as Event) : 'bad seed';
  if ('listen' in o) {
    const ok = typeof o.listen === 'string' && (o.port === undefined || isId(o.port)) && (o.error === undefined || typeof o.error === 'string');
    return ok ? (o as Event) : 'bad listen event';
  }
  if ('accept' in o) return isId(o.accept) && (o.target === 'ovsdb' || o.target === 'unixctl') && typeof o.remote === 'string' ? (o as Event) : 'bad accept event';
  if ('data' in o) return isId(o.data) && typeof o.base64 === 'string' ? (o as Event) : 'bad data event';
  if ('close' in o) return isId(o.close) ? (o as Event) : 'bad close event';
  return 'unknown event';
}

/** The events of a recording, fed back in order (--replay). */
export class StreamReplay {
  private next = 0;
  private stopped = false;

  private constructor(
    private readonly path: string,
    private readonly events: Event[],
  ) {}

  /** Reads and checks the whole file of DIR; throws ReplayFileError. */
  static load(dir: string): StreamReplay {
    const path = replayFilePath(dir);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ReplayFileError(`${path}: cannot read replay file (${(err as Error).message})`);
    }
    const lines = text.split('\n');
    if (lines[0] !== HEADER) throw new ReplayFileError(`${path}:1: not an nvs-dbserver replay file (expected "${HEADER}")`);
    if (lines[lines.length - 1] !== '') throw new ReplayFileError(`${path}:${lines.length}: truncated (last line has no newline)`);
    lines.pop();
    const events: Event[] = [];
    for (let i = 1; i < lines.length; i++) {
      let e: Event | string;
      try {
        e = toEvent(JSON.parse(lines[i]));
      } catch {
        e = 'not JSON';
      }
      if (typeof e === 'string') throw new ReplayFileError(`${path}:${i + 1}: ${e}`);
      events.push(e);
    }
    if (events.length === 0 || !('seed' in events[0])) throw new ReplayFileError(`${path}:2: expected the uuid seed`);
    return new StreamReplay(path, events);
  }

  /** The uuid seed of the recording. */
  seed(): Buffer {
    return Buffer.from((this.events[this.next++] as { seed: string }).seed, 'hex');
  }

  /** The recorded outcome of listening on `remote`: its port (ptcp:), nothing (punix:), or the recorded error thrown. */
  listened(remote: string): number | undefined {
    const e = this.events[this.next];
    if (!e || !('listen' in e) || e.listen !== remote) throw this.mismatch(`listen on ${remote}`);
    this.next++;
    if (e.error !== undefined) throw new ReplayedListenError(e.error, e.code);
    return e.port;
  }

  /** Stops run() after the event being handled (the server is exiting). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Feeds the remaining events to `accept` (which serves a socket) one at a
   * time, letting each settle before the next. Resolves when the events run
   * out or stop() is called; rejects on an event that names an unknown stream.
   */
  async run(accept: (target: StreamTarget, remote: string, socket: Socket) => void): Promise<void> {
    const sockets = new Map<number, Duplex>();
    const socket = (id: number): Duplex => {
      const s = sockets.get(id);
      if (!s) throw this.mismatch(`an event of stream ${id}, which was never accepted`, this.next - 1);
      return s;
    };
    while (this.next < this.events.length && !this.stopped) {
      const e = this.events[this.next++];
      if ('accept' in e) {
        // What the server sends goes nowhere: only its effects are replayed.
        const s = new Duplex({ read() {}, write: (_chunk, _enc, done) => done() });
        sockets.set(e.accept, s);
        accept(e.target, e.remote, s as unknown as Socket);
      } else if ('data' in e) socket(e.data).push(Buffer.from(e.base64, 'base64'));
      else if ('close' in e) socket(e.close).destroy();
      else throw this.mismatch('a stream event', this.next - 1);
      await settle();
    }
  }

  /** The error for the event at index `at` (line at + 2: the header is line 1). */
  private mismatch(expected: string, at = this.next): ReplayFileError {
    return new ReplayFileError(`${this.path}:${at + 2}: replay does not match the recording: expected ${expected}`);
  }
}

/** Lets the server finish with one event (its callbacks, its end-of-turn writes) before the next. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}
