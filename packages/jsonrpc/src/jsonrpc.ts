// JSON-RPC 1.0 over a byte stream, as OVSDB (RFC 7047) and OVS's unixctl use
// it: messages are JSON objects written back to back with no delimiter.
//
// `JsonFramer` finds message boundaries by tracking nesting depth, strings
// and escapes in one pass over each chunk (string contents in a tight inner
// loop), so it handles partial reads and several messages per read, and
// refuses a message larger than its limit before buffering it all.
// `JsonRpcConnection` layers requests with ids, replies, notifications,
// per-method handlers and an automatic `echo` reply on a socket.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import {
  ConnectionClosedError,
  JsonFramingError,
  JsonRpcProtocolError,
  JsonRpcRemoteError,
  JsonRpcError,
  MessageTooLargeError,
  toErrorJson,
} from './errors.ts';

/** Default cap on one message: large enough for any sane transaction or schema. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isJsonSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Splits a byte stream into complete top-level JSON texts (objects or arrays).
 * Feed it chunks with `push`; it returns the texts completed by that chunk,
 * in order. It does not parse them: the caller runs `JSON.parse`.
 * Throws `MessageTooLargeError` when a message grows past `maxBytes` and
 * `JsonFramingError` when a top-level value is not an object or array; after
 * either, the stream is unusable and the framer must be discarded.
 */
export class JsonFramer {
  private readonly maxBytes: number;
  /** Bytes of the message in progress, from earlier chunks. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(maxBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** True when no partial message is buffered. */
  get idle(): boolean {
    return this.depth === 0 && this.pendingBytes === 0;
  }

  push(chunk: Buffer): string[] {
    const out: string[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    // The scan state lives in locals while scanning (V8 keeps them in registers) and goes back to fields at the end.
    let depth = this.depth;
    let inString = this.inString;
    let start = depth > 0 ? 0 : -1;
    let i = 0;
    if (this.escaped) {
      // The previous chunk ended in a backslash: this chunk's first byte is escaped.
      this.escaped = false;
      i = 1;
    }
    while (i < n) {
      if (inString) {
        // Most of an OVSDB message is string bytes, where only a quote or a backslash matters.
        // (A loop beats Buffer#indexOf here: its per-call cost exceeds scanning OVSDB's short strings.)
        let c = 0;
        while (i < n) {
          c = chunk[i++];
          if (c === QUOTE) {
            inString = false;
            break;
          }
          if (c === BACKSLASH) {
            if (i === n) this.escaped = true;
            else i++;
          }
        }
        continue;
      }
      const b = chunk[i];
      if (depth === 0) {
        if (!isJsonSpace(b)) {
          if (b !== OPEN_BRACE && b !== OPEN_BRACKET) {
            throw new JsonFramingError(`expected '{' at the start of a JSON-RPC message, found byte 0x${b.toString(16)}`);
          }
          start = i;
          depth = 1;
        }
      } else if (b === QUOTE) inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
      else if ((b === CLOSE_BRACE || b === CLOSE_BRACKET) && --depth === 0) {
        const size = this.pendingBytes + (i + 1 - start);
        if (size > this.maxBytes) throw new MessageTooLargeError(this.maxBytes);
        out.push(this.take(chunk, start, i + 1));
        start = -1;
      }
      i++;
    }
    this.depth = depth;
    this.inString = inString;
    if (depth > 0) {
      const rest = n - start;
      if (this.pendingBytes + rest > this.maxBytes) throw new MessageTooLargeError(this.maxBytes);
      // Copy: the caller may reuse the chunk's memory.
      this.pending.push(Buffer.from(chunk.subarray(start)));
      this.pendingBytes += rest;
    }
    return out;
  }

  private take(chunk: Buffer, start: number, end: number): string {
    if (this.pendingBytes === 0) return chunk.toString('utf8', start, end);
    this.pending.push(chunk.subarray(start, end));
    const text = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return text;
  }
}

/** A JSON-RPC 1.0 message as sent on the wire. */
export interface JsonRpcMessage {
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: unknown;
  id?: unknown;
}

/**
 * Handles one incoming request. Its return value (or resolved promise) is the
 * result; a thrown JsonRpcError becomes the reply's error object.
 */
export type RequestHandler = (params: unknown[], conn: JsonRpcConnection, id: unknown) => unknown;
/**
 * Returned by a request handler that answers later itself, with reply(),
 * replyError() or sendText() and the request's id (e.g. once a commit is on
 * disk).
 */
export const REPLY_LATER: unique symbol = Symbol('reply later');

/** Handles one incoming notification (a message with `id: null`). */
export type NotificationHandler = (params: unknown[], conn: JsonRpcConnection) => void;

export interface JsonRpcConnectionOptions {
  /** pino logger (a child for this connection). */
  log: Logger;
  /** Largest message accepted before the connection is closed. */
  maxMessageBytes?: number;
  /** Name of the peer for logs, e.g. `unix:/run/nvs/db.sock#3`. */
  name?: string;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One JSON-RPC 1.0 session on a stream socket, usable by both ends.
 *
 * Events: `close` (err?: Error) once, when the socket is gone — pending
 * requests are rejected with ConnectionClosedError first.
 * Incoming `echo` requests are answered with their params unless a handler
 * for `echo` is registered. Requests for methods with no handler get the
 * error `{"error": "unknown method"}`; the connection stays up.
 * Malformed JSON or an oversize message closes the connection (logged).
 */
export class JsonRpcConnection extends EventEmitter {
  readonly name: string;
  private readonly socket: Duplex;
  private readonly log: Logger;
  private readonly framer: JsonFramer;
  private readonly requestHandlers = new Map<string, RequestHandler>();
  private readonly notificationHandlers = new Map<string, NotificationHandler>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  /** A read is being handled: sends go to `outgoing`, written once at its end. */
  private handlingRead = false;
  private outgoing = '';
  /** performance.now() of the last bytes received, for inactivity probes. */
  lastReceived = performance.now();

  constructor(socket: Duplex, opts: JsonRpcConnectionOptions) {
    super();
    this.socket = socket;
    this.log = opts.log;
    this.name = opts.name ?? 'jsonrpc';
    this.framer = new JsonFramer(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: Error) => {
      this.log.debug({ err: err.message }, 'socket error');
      this.shutdown(err);
    });
    socket.on('close', () => this.shutdown());
    socket.on('end', () => this.shutdown());
  }

  /** True once the connection is closed; sends are then ignored. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Registers the handler for incoming requests of `method` (replacing any). */
  handle(method: string, handler: RequestHandler): void {
    this.requestHandlers.set(method, handler);
  }

  /** Registers the handler for incoming notifications of `method`. */
  onNotification(method: string, handler: NotificationHandler): void {
    this.notificationHandlers.set(method, handler);
  }

  /** Sends a request and resolves with the peer's result; rejects with JsonRpcRemoteError on an error reply. */
  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new ConnectionClosedError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.send({ method, params, id });
    });
  }

  /** Sends a notification (no reply expected). */
  notify(method: string, params: unknown[]): void {
    this.send({ method, params, id: null });
  }

  /** Sends a raw message; dropped silently when the connection is closed. */
  send(msg: JsonRpcMessage): void {
    this.sendText(JSON.stringify(msg));
  }

  /** Sends one message already encoded as JSON text (e.g. a notification encoded once for many sessions). */
  sendText(text: string): void {
    if (this.closed) return;
    // While a read is being handled, gather messages: they leave in one write.
    if (this.handlingRead) this.outgoing += text;
    else this.socket.write(text);
  }

  /** Answers request `id` with `result` (for a handler that returned REPLY_LATER). */
  reply(id: unknown, result: unknown): void {
    this.send({ result, error: null, id });
  }

  /** Answers request `id` with the error reply for `err` (logged unless it is a JsonRpcError). */
  replyError(id: unknown, err: unknown, method = 'request'): void {
    if (!(err instanceof JsonRpcError)) this.log.error({ method, err }, 'request handler failed unexpectedly');
    this.send({ result: null, error: toErrorJson(err), id });
  }

  /** Bytes written that the peer has not taken yet: queued on the socket beyond what the kernel accepted. */
  get backlog(): number {
    return this.socket.writableLength;
  }

  /** Closes the connection (after flushing what is already written). */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.socket.end();
    this.shutdown();
  }

  private flush(): void {
    if (this.outgoing.length === 0) return;
    const text = this.outgoing;
    this.outgoing = '';
    this.socket.write(text);
  }

  private shutdown(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const closedErr = new ConnectionClosedError();
    for (const p of this.pending.values()) p.reject(closedErr);
    this.pending.clear();
    if (!this.socket.destroyed) this.socket.destroy();
    this.emit('close', err);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceived = performance.now();
    let texts: string[];
    try {
      texts = this.framer.push(chunk);
    } catch (err) {
      this.protocolFailure(err as Error);
      return;
    }
    // Replies and notifications produced while handling one read leave in one write.
    this.handlingRead = true;
    try {
      for (const text of texts) {
        if (this.closed) return;
        let msg: unknown;
        try {
          msg = JSON.parse(text);
        } catch (err) {
          this.protocolFailure(new JsonFramingError(`malformed JSON: ${(err as Error).message}`));
          return;
        }
        this.dispatch(msg);
      }
    } finally {
      this.handlingRead = false;
      if (!this.closed) this.flush();
    }
  }

  private protocolFailure(err: Error): void {
    this.log.warn({ peer: this.name, code: (err as JsonRpcError).code, err: err.message }, 'closing JSON-RPC connection: protocol error');
    this.shutdown(err);
  }

  private dispatch(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.protocolFailure(new JsonRpcProtocolError('JSON-RPC message is not an object'));
      return;
    }
    const msg = raw as JsonRpcMessage;
    if (typeof msg.method === 'string') {
      const params = Array.isArray(msg.params) ? msg.params : [];
      if (msg.id === null || msg.id === undefined) this.dispatchNotification(msg.method, params);
      else this.dispatchRequest(msg.method, params, msg.id);
      return;
    }
    if ('result' in msg || 'error' in msg) {
      this.dispatchReply(msg);
      return;
    }
    this.protocolFailure(new JsonRpcProtocolError('JSON-RPC message has neither a method nor a result'));
  }

  private dispatchNotification(method: string, params: unknown[]): void {
    const handler = this.notificationHandlers.get(method);
    if (!handler) {
      this.log.debug({ method }, 'ignoring unknown notification');
      return;
    }
    try {
      handler(params, this);
    } catch (err) {
      this.log.warn({ method, err: (err as Error).message }, 'notification handler failed');
    }
  }

  private dispatchRequest(method: string, params: unknown[], id: unknown): void {
    const handler = this.requestHandlers.get(method);
    if (!handler) {
      if (method === 'echo') this.send({ result: params, error: null, id });
      else this.send({ result: null, error: { error: 'unknown method', details: `unknown method "${method}"` }, id });
      return;
    }
    let result: unknown;
    try {
      result = handler(params, this, id);
    } catch (err) {
      this.replyError(id, err, method);
      return;
    }
    if (result === REPLY_LATER) return;
    if (result instanceof Promise) {
      result.then(
        (value) => this.reply(id, value),
        (err) => this.replyError(id, err, method),
      );
    } else {
      this.reply(id, result);
    }
  }

  private dispatchReply(msg: JsonRpcMessage): void {
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!p) {
      this.log.debug({ id: msg.id }, 'ignoring reply to unknown request');
      return;
    }
    this.pending.delete(msg.id as number);
    if (msg.error !== null && msg.error !== undefined) p.reject(new JsonRpcRemoteError(p.method, msg.error));
    else p.resolve(msg.result);
  }
}
