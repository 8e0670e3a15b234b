// Error classes of the JSON-RPC layer. Each has a stable `code` callers can
// switch on and the error string it becomes on the wire (`rfcError`: the
// `{"error": ..., "details": ...}` object of RFC 7047, which OVS's unixctl
// peers also read), so a request handler may throw one and the connection
// replies with its JSON. Packages above this one (OVSDB) derive their own
// error classes from `JsonRpcError`.

/** The JSON error object of RFC 7047 (section 3.1): what an error reply carries. */
export interface ErrorJson {
  error: string;
  details?: string;
  [extra: string]: unknown;
}

/** Base class: an error that knows the error object its reply carries. */
export class JsonRpcError extends Error {
  /** Stable machine-readable code, e.g. `JSONRPC_CONNECTION_CLOSED`. */
  readonly code: string;
  /** The error string sent to peers, e.g. `syntax error`. */
  readonly rfcError: string;

  constructor(code: string, rfcError: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.rfcError = rfcError;
  }

  /** The error object of a reply for this error. */
  toJson(): ErrorJson {
    return { error: this.rfcError, details: this.message };
  }
}

/** Thrown (and the connection closed) when a JSON-RPC message exceeds the configured size limit. */
export class MessageTooLargeError extends JsonRpcError {
  constructor(limit: number) {
    super('JSONRPC_MESSAGE_TOO_LARGE', 'syntax error', `JSON-RPC message exceeds the ${limit}-byte limit`);
  }
}

/** Thrown (and the connection closed) when the byte stream is not a sequence of JSON objects. */
export class JsonFramingError extends JsonRpcError {
  constructor(message: string) {
    super('JSONRPC_FRAMING', 'syntax error', message);
  }
}

/** Thrown when a JSON-RPC request is malformed or names an unknown method. */
export class JsonRpcProtocolError extends JsonRpcError {
  constructor(message: string, rfcError = 'syntax error') {
    super('JSONRPC_PROTOCOL', rfcError, message);
  }
}

/** Rejects a request when the peer answered with an error object. */
export class JsonRpcRemoteError extends JsonRpcError {
  /** The error member of the peer's reply, as received. */
  readonly remote: unknown;
  constructor(method: string, remote: unknown) {
    const text = typeof remote === 'string' ? remote : JSON.stringify(remote);
    super('JSONRPC_REMOTE_ERROR', typeof remote === 'object' && remote !== null && typeof (remote as ErrorJson).error === 'string' ? (remote as ErrorJson).error : 'remote error', `${method}: peer replied with error ${text}`);
    this.remote = remote;
  }
}

/** Rejects pending requests when the connection closes before their reply arrives. */
export class ConnectionClosedError extends JsonRpcError {
  constructor(message = 'JSON-RPC connection closed') {
    super('JSONRPC_CONNECTION_CLOSED', 'connection closed', message);
  }
}

/** Turns anything thrown into an error object (unexpected errors become `internal error`). */
export function toErrorJson(err: unknown): ErrorJson {
  if (err instanceof JsonRpcError) return err.toJson();
  const message = err instanceof Error ? err.message : String(err);
  return { error: 'internal error', details: message };
}
