// Error classes for the OVSDB package. Each class has a stable `code` that
// callers can switch on, and — where RFC 7047 defines one — the RFC's error
// string (`rfcError`), so the server can turn any thrown error into the
// `{"error": ..., "details": ...}` object the RFC puts in transact results
// and JSON-RPC replies.
import { JsonRpcError, type ErrorJson } from '@nvs/jsonrpc';

/**
 * Base class: every error this package throws on purpose is an OvsdbError.
 * `code` is stable (`OVSDB_CONSTRAINT_VIOLATION`), `rfcError` the RFC 7047
 * error string sent to peers (`constraint violation`). The JSON-RPC layer's
 * own errors (framing, closed connection, error replies) are JsonRpcErrors
 * but not OvsdbErrors.
 */
export class OvsdbError extends JsonRpcError {}

/** Thrown when JSON input does not follow RFC 7047's grammar (bad notation, unknown member, wrong shape). */
export class OvsdbSyntaxError extends OvsdbError {
  /** `syntax`: the offending JSON, which ovsdb-server reports beside the details where it has it. */
  constructor(
    message: string,
    rfcError = 'syntax error',
    private readonly syntax?: unknown,
  ) {
    super('OVSDB_SYNTAX', rfcError, message);
  }

  override toJson(): ErrorJson {
    return this.syntax === undefined ? super.toJson() : { ...super.toJson(), syntax: sortedJson(this.syntax) };
  }
}

/** Thrown when a value breaks a column's type constraints (enum, range, length, cardinality, index, maxRows). */
export class ConstraintViolationError extends OvsdbError {
  /** `syntax`: the offending JSON (an operation, a mutation), which ovsdb-server reports beside the details where it has it. */
  constructor(
    message: string,
    readonly syntax?: unknown,
  ) {
    super('OVSDB_CONSTRAINT_VIOLATION', 'constraint violation', message);
  }

  override toJson(): ErrorJson {
    return this.syntax === undefined ? super.toJson() : { ...super.toJson(), syntax: sortedJson(this.syntax) };
  }
}

/** JSON text with object members sorted by name, as ovsdb-server prints the JSON it quotes in "syntax". */
export function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Thrown when a strong reference points to a row that does not exist (or would be deleted). */
export class ReferentialIntegrityError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_REFERENTIAL_INTEGRITY', 'referential integrity violation', message);
  }
}

/** Thrown when a set or map in the JSON notation repeats an element or key (OVS calls this an "ovsdb error"). */
export class DuplicateElementError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_DUPLICATE_ELEMENT', 'ovsdb error', message);
  }
}

/** Thrown when a transaction uses the same uuid-name twice. */
export class DuplicateUuidNameError extends OvsdbError {
  constructor(name: string) {
    super('OVSDB_DUPLICATE_UUID_NAME', 'duplicate uuid-name', `uuid-name "${name}" is used by more than one insert`);
  }
}

/** Thrown when an insert names a uuid that a row has (or had, before this transaction deleted it). */
export class DuplicateUuidError extends OvsdbError {
  constructor(private readonly uuid: string) {
    super('OVSDB_DUPLICATE_UUID', 'duplicate uuid', 'This UUID would duplicate a UUID already present within the table or deleted within the same transaction.');
  }

  /** With the offending value in `syntax`, as ovsdb-server reports it. */
  override toJson(): ErrorJson {
    return { ...super.toJson(), syntax: JSON.stringify(this.uuid) };
  }
}

/** Thrown when a mutation's result is outside its domain (e.g. division by zero). */
export class DomainError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_DOMAIN_ERROR', 'domain error', message);
  }
}

/** Thrown when an arithmetic mutation overflows the 64-bit integer range or a column's range. */
export class RangeOvsdbError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_RANGE_ERROR', 'range error', message);
  }
}

/** Thrown when a `wait` operation's timeout expires before its condition holds. */
export class TimedOutError extends OvsdbError {
  constructor(message = 'wait operation timed out') {
    super('OVSDB_TIMED_OUT', 'timed out', message);
  }
}

/** Thrown when a transaction contains an `abort` operation. */
export class AbortedError extends OvsdbError {
  constructor(message = 'aborted by request') {
    super('OVSDB_ABORTED', 'aborted', message);
  }
}

/** Thrown when an `assert` names a lock that the session does not own. */
export class NotOwnerError extends OvsdbError {
  constructor(lock: string) {
    super('OVSDB_NOT_OWNER', 'not owner', `session does not own lock "${lock}"`);
  }
}

/** Thrown when a request names a database the server does not serve. */
export class UnknownDatabaseError extends OvsdbError {
  constructor(db: string) {
    super('OVSDB_UNKNOWN_DATABASE', 'unknown database', `no database named "${db}"`);
  }
}

/** Thrown when a feature or method is not supported. */
export class NotSupportedError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_NOT_SUPPORTED', 'not supported', message);
  }
}

/** Thrown when a database file cannot be read or written. */
export class OvsdbIoError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_IO_ERROR', 'I/O error', message);
  }
}

/** Thrown when a database file is not a valid OVSDB standalone file. */
export class StorageFormatError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_STORAGE_FORMAT', 'I/O error', message);
  }
}

/** Thrown for an operation that would change the database on a read-only connection (a Manager row with read_only=true). */
export class NotAllowedError extends OvsdbError {
  constructor(op: string) {
    super('OVSDB_NOT_ALLOWED', 'not allowed', `${op} operation not allowed when database server is in read only mode`);
  }
}

/** Thrown when a database's rows do not fit the schema it is converted to (the RFC error of the insert that failed). */
export class ConversionError extends OvsdbError {
  constructor(rfcError: string, details: string) {
    super('OVSDB_CONVERSION', rfcError, details);
  }
}

/** Thrown when a schema is malformed or inconsistent. */
export class SchemaError extends OvsdbError {
  constructor(message: string) {
    super('OVSDB_SCHEMA', 'syntax error', message);
  }
}
