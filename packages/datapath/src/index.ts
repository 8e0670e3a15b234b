/**
 * @nvs/datapath — the TypeScript face of the Rust fast path (the napi addon
 * built by `npm run build:addon`).
 *
 * A `Datapath` owns polling threads and ports and caches megaflows
 * `{key, mask, actions}`; packets that match no megaflow come up as upcalls,
 * in batches, for the slow path to decide on. Flows, executions and upcalls
 * cross as record batches (raw.ts, defined in Rust's `records` module); keys
 * are `FlowKey`s written and read by the one codec, `dp.keys`; actions are
 * `DpAction` lists (actions.ts). Errors are `DatapathError` subclasses with
 * a stable `code`; batched operations return the ones that failed.
 *
 * @example
 * ```ts
 * import { Datapath, encodeActions, forEachUpcall, PUT_CREATE, RecordWriter, writeExecuteRecord, writePutRecord } from '@nvs/datapath';
 *
 * const dp = Datapath.open({ threads: 1 });
 * const p1 = dp.addPort('p1', 'dummy');
 * const p2 = dp.addPort('p2', 'dummy');
 * const mask = dp.keys.exactMask(['in_port', 'eth_type']);
 * const out = encodeActions([{ type: 'output', port: p2 }]);
 * dp.onUpcalls((batch) => {
 *   const puts = new RecordWriter();
 *   const execs = new RecordWriter();
 *   forEachUpcall(batch, dp.keys.size, (up) => {
 *     // Decide (ofproto xlate), install the megaflow, then send this packet on.
 *     writePutRecord(puts, PUT_CREATE, dp.keys.id(dp.keys.decode(batch, up.keyOffset), mask), out);
 *     writeExecuteRecord(execs, up.inPort, batch.subarray(up.packetOffset, up.packetOffset + up.packetLength), out);
 *   });
 *   dp.flowPut(puts.take());
 *   dp.execute(execs.take());
 * });
 * dp.inject(p1, [frame]);          // dummy ports: feed…
 * const sent = dp.drain(p2);       // …and collect
 * dp.close();
 * ```
 */

export {
  Datapath,
  type BatchFailure,
  type DatapathOptions,
  type DatapathStats,
  type PmdCounters,
  type PortStats,
  type ThreadStats,
} from './datapath.ts';
export { decodeActions, encodeActions, SET_FIELDS, type DpAction, type SetFieldName } from './actions.ts';
export { FRAG_ANY, FRAG_LATER, KeyCodec, zeroFlowKey, type FlowKey, type FlowKeyField, type KeyField, type KeyFieldKind } from './flow-key.ts';
export * from './errors.ts';
export {
  FLOW_TRAILER,
  forEachFlow,
  forEachUpcall,
  PUT_CREATE,
  PUT_MODIFY,
  PUT_ZERO_STATS,
  readCounter,
  readStats,
  RecordWriter,
  STATS_RECORD,
  UPCALL_HEADER,
  writeExecuteRecord,
  writePutRecord,
  type RawFlow,
  type RawStats,
  type RawUpcall,
} from './raw.ts';
export { ADDON_FILE, findAddon, loadAddon, type DeviceState, type NativeAddon } from './native.ts';
