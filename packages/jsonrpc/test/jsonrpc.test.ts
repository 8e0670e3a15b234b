// JSON-RPC framing and connection: the framer is property-tested with random
// message sets split at random points; the connection is tested over a real
// socket pair.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { JsonFramer, JsonRpcConnection } from '../src/jsonrpc.ts';
import { JsonFramingError, JsonRpcRemoteError, MessageTooLargeError } from '../src/errors.ts';

const log = pino({ level: 'silent' });

// JSON-RPC-shaped messages with awkward strings (braces, quotes, escapes, unicode).
const awkward = fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', 'a', 'é', '😀', ' ', '\n') });
const message = fc.record({
  method: awkward,
  params: fc.array(fc.oneof(awkward, fc.integer(), fc.dictionary(awkward, fc.array(awkward))), { maxLength: 4 }),
  id: fc.oneof(fc.integer(), fc.constant(null)),
});

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('JsonFramer', () => {
  it('recovers every message whatever the chunk boundaries and whitespace between messages', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), fc.constantFrom('', ' ', '\n', '\r\n\t'), (msgs, cuts, gap) => {
        const stream = Buffer.from(msgs.map((m) => JSON.stringify(m)).join(gap), 'utf8');
        const framer = new JsonFramer();
        const got: unknown[] = [];
        for (const chunk of splitAt(stream, cuts)) for (const text of framer.push(chunk)) got.push(JSON.parse(text));
        expect(got).toEqual(msgs);
        expect(framer.idle).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('recovers every message when fed one byte at a time (escapes and multi-byte characters split anywhere)', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 4 }), (msgs) => {
        const stream = Buffer.from(msgs.map((m) => JSON.stringify(m)).join(''), 'utf8');
        const framer = new JsonFramer();
        const got: unknown[] = [];
        for (let i = 0; i <= stream.length; i++) for (const text of framer.push(stream.subarray(i, i + 1))) got.push(JSON.parse(text));
        expect(got).toEqual(msgs);
        expect(framer.idle).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a message over the limit before reading all of it', () => {
    const framer = new JsonFramer(1024);
    expect(() => framer.push(Buffer.from('{"a":"' + 'x'.repeat(600)))).not.toThrow();
    expect(() => framer.push(Buffer.from('x'.repeat(600)))).toThrow(MessageTooLargeError);
  });

  it('refuses a top-level value that is not an object or array', () => {
    expect(() => new JsonFramer().push(Buffer.from('42'))).toThrow(JsonFramingError);
  });
});

describe('JsonRpcConnection', () => {
  let dir: string;
  let server: Server;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.length = 0;
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Two connections joined by a unix socket. */
  async function pair(opts: { maxMessageBytes?: number } = {}): Promise<[JsonRpcConnection, JsonRpcConnection]> {
    dir = mkdtempSync(join(tmpdir(), 'nvs-jsonrpc-'));
    const path = join(dir, 's');
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer((s) => resolve(s));
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
    const c = connect(path);
    const s = await accepted;
    sockets.push(c, s);
    return [new JsonRpcConnection(c, { log }), new JsonRpcConnection(s, { log, ...opts })];
  }

  it('matches replies to requests, carries notifications, answers echo and unknown methods', async () => {
    const [client, srv] = await pair();
    srv.handle('add', (p) => (p[0] as number) + (p[1] as number));
    srv.handle('slow', (p) => new Promise((r) => setTimeout(() => r(p[0]), 20)));
    const notes: unknown[] = [];
    srv.onNotification('note', (p) => notes.push(p[0]));
    const [slow, sum] = await Promise.all([client.request('slow', ['s']), client.request('add', [2, 3])]);
    expect([slow, sum]).toEqual(['s', 5]);
    client.notify('note', ['hi']);
    expect(await client.request('echo', ['x', 1])).toEqual(['x', 1]);
    expect(notes).toEqual(['hi']);
    await expect(client.request('nope', [])).rejects.toBeInstanceOf(JsonRpcRemoteError);
    // Echo works the other way too.
    expect(await srv.request('echo', [])).toEqual([]);
  });

  it('closes on malformed JSON, rejecting the peer\'s pending requests', async () => {
    const [client, srv] = await pair({ maxMessageBytes: 4096 });
    const closed = new Promise((r) => srv.once('close', r));
    // A request with no handler yet is pending when the server sees garbage and hangs up.
    srv.handle('never', () => new Promise(() => {}));
    const pending = client.request('never', []);
    (sockets[0] as Socket).write('{"method": nope}');
    await closed;
    await expect(pending).rejects.toThrow();
    expect(srv.isClosed).toBe(true);
  });

  it('closes a connection that sends more than the limit without a delimiter', async () => {
    const [, srv] = await pair({ maxMessageBytes: 64 * 1024 });
    const closed = new Promise((r) => srv.once('close', r));
    const sock = sockets[0];
    sock.on('error', () => {});
    sock.write('{"method":"x","params":["' + 'y'.repeat(200 * 1024));
    await closed;
    expect(srv.isClosed).toBe(true);
  });
});
