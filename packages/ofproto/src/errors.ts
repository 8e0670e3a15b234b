// Error classes of the ofproto engine (tables, xlate, trace). Each class has a
// stable `code` so that callers (vswitchd, the CLIs) can switch on it, and a
// message a user can act on. Syntax errors of rule files belong to the syntax
// layer; these are the errors of applying and running rules.

/** Base class: every error the ofproto engine throws on purpose. */
export class OfprotoError extends Error {
  /** Stable machine-readable code, e.g. `OFPROTO_BAD_TABLE`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Thrown when a flow-mod names a table outside 0–254 (255 means "all" only for delete and dump). */
export class BadTableError extends OfprotoError {
  constructor(table: number) {
    super('OFPROTO_BAD_TABLE', `table ${table} is out of range: OpenFlow tables are 0-254`);
  }
}

/** Thrown when a rule uses a feature the engine does not support yet (ct, group, meter, …). */
export class UnsupportedError extends OfprotoError {
  constructor(what: string) {
    super('OFPROTO_UNSUPPORTED', `${what} is not supported yet`);
  }
}

/** Thrown when a flow-mod is inconsistent (e.g. conjunction mixed with other actions, bad priority). */
export class BadFlowModError extends OfprotoError {
  constructor(message: string) {
    super('OFPROTO_BAD_FLOW_MOD', message);
  }
}

/** Thrown when a batch of flow-mods fails validation; `index` says which one (0-based), nothing was applied. */
export class FlowModBatchError extends OfprotoError {
  readonly index: number;
  override readonly cause: OfprotoError;
  constructor(index: number, cause: OfprotoError) {
    super(cause.code, `flow-mod ${index + 1}: ${cause.message} (nothing was applied)`);
    this.index = index;
    this.cause = cause;
  }
}

/** Thrown when a port configuration is invalid (duplicate ofport, access port without tag, bad VLAN). */
export class BadPortConfigError extends OfprotoError {
  constructor(message: string) {
    super('OFPROTO_BAD_PORT_CONFIG', message);
  }
}

/** Thrown when a trace request cannot be understood (bad flow text, unknown port). */
export class BadTraceRequestError extends OfprotoError {
  constructor(message: string) {
    super('OFPROTO_BAD_TRACE', message);
  }
}
