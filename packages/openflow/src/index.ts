/**
 * @nvs/openflow — the OpenFlow wire protocol: messages to and from typed
 * values whose matches and actions are ofproto's own (`Match`, `Action`,
 * `FlowMod`), so a rule has one representation whether it came from a rule
 * file or the wire.
 */
export * from './wire.ts';
export * from './match.ts';
export * from './actions.ts';
export * from './messages.ts';
