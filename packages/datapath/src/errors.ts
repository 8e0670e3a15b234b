// Errors of the datapath face: one class per condition, each with the stable
// `code` the Rust side throws (see crates/datapath-node), so callers can
// branch on `instanceof` or on `code`.

/** Base class: thrown (or returned per flow in batches) by everything in @nvs/datapath. */
export class DatapathError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Thrown when the compiled addon cannot be found or loaded. */
export class AddonNotFoundError extends DatapathError {}
/** Thrown when the addon's flow key layout is not the one this package was written for. */
export class LayoutMismatchError extends DatapathError {}
/** Thrown when a datapath option is out of range. */
export class BadConfigError extends DatapathError {}
/** Returned when `flowPut` without `modify` finds the flow already installed. */
export class FlowExistsError extends DatapathError {}
/** Returned when a flow to delete or modify is not installed. */
export class FlowNotFoundError extends DatapathError {}
/** Thrown when no port has the given number. */
export class NoSuchPortError extends DatapathError {}
/** Thrown when a port name is already taken. */
export class PortExistsError extends DatapathError {}
/** Thrown when a port type, option or ability is not available. */
export class PortError extends DatapathError {}
/** Thrown when a flow key or mask is malformed (wrong size, unknown field, value out of range). */
export class BadKeyError extends DatapathError {}
/** Thrown when an action list cannot be encoded or decoded. */
export class ActionEncodingError extends DatapathError {}
/** Thrown when the datapath was closed. */
export class DatapathClosedError extends DatapathError {}

const byCode: Record<string, new (code: string, message: string) => DatapathError> = {
  DP_ADDON_NOT_FOUND: AddonNotFoundError,
  DP_LAYOUT_MISMATCH: LayoutMismatchError,
  DP_BAD_CONFIG: BadConfigError,
  DP_PIN_FAILED: BadConfigError,
  DP_FLOW_EXISTS: FlowExistsError,
  DP_FLOW_NOT_FOUND: FlowNotFoundError,
  DP_NO_SUCH_PORT: NoSuchPortError,
  DP_PORT_EXISTS: PortExistsError,
  DP_PORT_UNSUPPORTED: PortError,
  DP_PORT_UNKNOWN_TYPE: PortError,
  DP_PORT_BAD_OPTION: PortError,
  DP_PORT_BAD_MTU: PortError,
  DP_PORT_CLOSED: PortError,
  DP_PORT_IO: PortError,
  DP_PORT_BAD_NAME: PortError,
  DP_PORT_OS: PortError,
  DP_PORT_NO_PRIVILEGE: PortError,
  DP_BAD_PACKET: PortError,
  DP_BAD_KEY: BadKeyError,
  DP_CLOSED: DatapathClosedError,
};

/** The error class instance for an addon error code. */
export function datapathError(code: string, message: string): DatapathError {
  const Cls = byCode[code] ?? (code.startsWith('ACTION_') ? ActionEncodingError : DatapathError);
  return new Cls(code, message);
}

/** Runs an addon call, turning what it throws into the matching error class. */
export function callAddon<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromAddon(e);
  }
}

/** Maps an error thrown by the addon (an Error with a string `code`) to its class. */
export function fromAddon(e: unknown): unknown {
  if (e instanceof DatapathError) return e;
  if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') {
    return datapathError((e as Error & { code: string }).code, e.message);
  }
  return e;
}
