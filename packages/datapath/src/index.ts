/**
 * @nvs/datapath — the TypeScript face of the Rust fast path (the napi addon
 * built by `npm run build:addon`).
 *
 * A `Datapath` owns polling threads and ports and caches megaflows
 * `{key, mask, actions}`; packets that match no megaflow come up as upcalls,
 * in batches, for the slow path to decide on. Keys and masks are `FlowKey`
 * objects, actions are `DpAction` lists; their binary encodings (defined in
 * Rust) are handled here. Errors are `DatapathError` subclasses with a stable
 * `code`; batched flow operations return one `FlowOpResult` per flow.
 *
 * @example
 * ```ts
 * import { Datapath } from '@nvs/datapath';
 *
 * const dp = Datapath.open({ threads: 1 });
 * const p1 = dp.addPort('p1', 'dummy');
 * const p2 = dp.addPort('p2', 'dummy');
 * dp.onUpcalls((upcalls) => {
 *   for (const up of upcalls) {
 *     // Decide (ofproto xlate), install the megaflow, then send this packet on.
 *     const mask = dp.keys.exactMask(['inPort', 'ethType']);
 *     const actions = [{ type: 'output', port: p2 }] as const;
 *     dp.flowPut([{ key: up.key, mask, actions }]);
 *     dp.execute(up.inPort, up.packet, actions);
 *   }
 * });
 * dp.inject(p1, [frame]);          // dummy ports: feed…
 * const out = dp.drain(p2);        // …and collect
 * console.log(dp.flowDump()[0].stats.packets, dp.stats().threads[0].emcHits);
 * dp.close();
 * ```
 */

export {
  Datapath,
  type DatapathOptions,
  type DatapathStats,
  type DpFlow,
  type FlowMatch,
  type FlowOpResult,
  type FlowPutRequest,
  type FlowStats,
  type PortStats,
  type RawFailure,
  type ThreadStats,
  type Upcall,
} from './datapath.ts';
export { decodeActions, encodeActions, SET_FIELDS, type DpAction, type SetFieldName } from './actions.ts';
export {
  FlowKeyCodec,
  FLOW_KEY_FIELDS,
  FRAG_ANY,
  FRAG_LATER,
  formatIpv4,
  formatMac,
  parseIpv4,
  parseMac,
  type FlowKey,
  type FlowKeyField,
} from './flow-key.ts';
export * from './errors.ts';
export {
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
  type RawStats,
  type RawUpcall,
} from './raw.ts';
export { ADDON_FILE, findAddon, loadAddon, type DeviceState, type NativeAddon } from './native.ts';
