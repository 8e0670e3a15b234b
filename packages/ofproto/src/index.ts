/**
 * @nvs/ofproto — the slow path of nvs: OpenFlow tables, rule-file syntax,
 * the classifier, xlate (OpenFlow actions and NORMAL with MAC learning →
 * datapath actions + megaflow), and trace. It sees the datapath only through
 * an `OdpPortMap` (OpenFlow ↔ datapath port numbers) and the datapath's key
 * type; the caller (vswitchd, through its `Dpif`) installs what xlate
 * decides. It never reads OVSDB.
 *
 * One `Ofproto` per bridge:
 *
 * ```ts
 * import { Ofproto, parseFlows, trace, formatDpActions } from '@nvs/ofproto';
 *
 * const of = new Ofproto({
 *   name: 'br0',
 *   odpPorts,                               // odpPort/ofPort mapping
 *   logger: log.child({ bridge: 'br0' }),
 *   clock: { now: () => Date.now() },
 *   failMode: 'standalone',                 // installs priority=0,actions=NORMAL
 *   macAgingTime: 300, macTableSize: 8192,
 *   ports: [
 *     { ofport: 1, name: 'p1', tag: 10 },                    // access VLAN 10
 *     { ofport: 2, name: 'p2', trunks: [10, 20] },           // trunk
 *     { ofport: 0xfffe, name: 'br0' },                       // LOCAL
 *   ],
 * });
 * of.applyFlowMods(parseFlows(text, { file: 'rules.txt' }));   // all or nothing
 *
 * // On an upcall (flow.in_port is the OpenFlow port):
 * const r = of.xlate(flow, { packet });
 * dpif.put([{ ...r.megaflow, actions: r.actions }]);   // vswitchd's Dpif
 * of.credit(r, 1, packet.length, of.now());  // the upcalled packet itself
 * // keep r.tags (and the flow) with the megaflow; on revalidation:
 * const changed = of.takeInvalidations();    // Set of tags ('ports' = everything)
 * // for each megaflow whose tags meet `changed`: of.xlate(flow, { sideEffects: false }),
 * // then flowPut the new actions/mask, or flowDel when they differ
 * // periodically: of.run() expires rules and MACs; credit(refs, Δpackets, Δbytes, usedAt) from megaflow stats
 * // appctl: formatDumpFlows(of), formatFdb(of), trace(of, 'in_port=1,tcp,tp_dst=80').text
 * ```
 */

export * from './fields.ts';
export * from './match.ts';
export * from './actions.ts';
export * from './flow-mod.ts';
export * from './errors.ts';
export * from './dpif.ts';
export * from './odp-flow.ts';
export * from './odp-flow-parser.ts';
export * from './classifier.ts';
export * from './tables.ts';
export * from './mac-learning.ts';
export * from './bridge-ports.ts';
export * from './xlate.ts';
export * from './ofproto.ts';
export * from './flow-diff.ts';
export * from './trace.ts';
export * from './format.ts';
export { parseFlow, parseFlows, type ParseOptions, type Dialect } from './syntax/parser.ts';
export { printActions, printFlowMod, printMatch, printPort, printRule, type PrintDialect, type PrintOptions } from './syntax/printer.ts';
export { RuleError, RuleSyntaxError, RuleUnsupportedError } from './syntax/errors.ts';
