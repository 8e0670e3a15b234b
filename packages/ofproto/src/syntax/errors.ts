/**
 * Errors of the rule-file syntax layer. Every error names where it happened
 * (`file:line:column`, column 1-based) and what was expected, so a user can
 * fix the line without reading our code. `code` is stable for callers:
 *
 * - `RULE_SYNTAX`: the text is not a rule (unknown field or action, bad
 *   value, missing `actions=`, inconsistent actions).
 * - `RULE_UNSUPPORTED`: a real OpenFlow/OVS feature nvs does not implement
 *   yet (ct, group, meter, …): the rule is well-formed but cannot be applied.
 */

/** Where in the input an error was found. */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** Base class of the syntax layer's errors. */
export class RuleError extends Error {
  readonly code: 'RULE_SYNTAX' | 'RULE_UNSUPPORTED';
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The message without the position prefix. */
  readonly reason: string;

  constructor(code: 'RULE_SYNTAX' | 'RULE_UNSUPPORTED', pos: SourcePos, reason: string) {
    super(`${pos.file}:${pos.line}:${pos.column}: ${reason}`);
    this.name = new.target.name;
    this.code = code;
    this.file = pos.file;
    this.line = pos.line;
    this.column = pos.column;
    this.reason = reason;
  }
}

/** Thrown when a rule line cannot be parsed or is invalid. */
export class RuleSyntaxError extends RuleError {
  constructor(pos: SourcePos, reason: string) {
    super('RULE_SYNTAX', pos, reason);
  }
}

/** Thrown when a rule uses an action or feature that nvs recognises but does not support yet. */
export class RuleUnsupportedError extends RuleError {
  constructor(pos: SourcePos, reason: string) {
    super('RULE_UNSUPPORTED', pos, reason);
  }
}
