// The saved rule file must read back as exactly the rules that were saved,
// including actions whose OpenFlow 1.0 display form is lossy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { identityOdpPorts, Ofproto, parseFlows, ruleToFlowMod } from '@nvs/ofproto';
import { RuleStore } from '../src/rulestore.ts';
import type { OfBridge } from '../src/ofbridge.ts';

const RULES = `
table=0,priority=300,ip,actions=goto_table:3
table=0,priority=200,arp,vlan_tci=0x1000/0x1000,actions=note:01.02.03,set_field:4101->vlan_vid,output:2
table=0,priority=100,cookie=0x7,idle_timeout=30,tcp,tp_dst=80,actions=set_field:10.0.0.9->ip_dst,resubmit(,3)
table=3,priority=10,actions=load:0x2a->NXM_NX_REG0[0..7],output:1
`;

describe('RuleStore', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('saves rules that load back identical (goto_table, note, set_field kept)', () => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-rulestore-'));
    const log = pino({ level: 'silent' });
    const mk = () =>
      new Ofproto({ name: 'br0', odpPorts: identityOdpPorts(), logger: log, clock: { now: () => 0 }, failMode: 'secure', ports: [{ ofport: 1, name: 'p1' }, { ofport: 2, name: 'p2' }] });
    const saved = mk();
    saved.applyFlowMods(parseFlows(RULES, { file: 'rules.txt', dialect: 'of13' }));
    const store = new RuleStore(dir, log);
    const bridge = (of: Ofproto) => ({ name: 'br0', ofproto: of, ports: new Map() }) as unknown as OfBridge;
    store.schedule(bridge(saved));
    store.flush();

    const restored = mk();
    const loaded = store.load(bridge(restored));
    expect(loaded).toBeDefined();
    restored.applyFlowMods(loaded!);
    const strip = (of: Ofproto) => of.dumpFlows().map((r) => ruleToFlowMod(r));
    expect(strip(restored)).toEqual(strip(saved));
    expect(strip(saved).length).toBe(4);
  });
});
