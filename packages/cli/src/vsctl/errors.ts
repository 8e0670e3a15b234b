// The one error class of nvs-vsctl: a stable `code` for tests and scripts,
// a message worded like ovs-vsctl's, and the process exit status.

/** Thrown for anything the user can fix: bad arguments, missing records, a timeout. */
export class VsctlError extends Error {
  /** Stable machine-readable code, e.g. `VSCTL_NO_BRIDGE`. */
  readonly code: string;
  /** Exit status: 1 for errors, 2 for "absent" answers (br-exists), 142 on timeout as ovs-vsctl's SIGALRM. */
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode = 1) {
    super(message);
    this.name = 'VsctlError';
    this.code = code;
    this.exitCode = exitCode;
  }
}
