#!/usr/bin/env node
// Generates configs/vswitch.ovsschema (the Open_vSwitch schema nvs-dbserver
// creates new databases from) from the column list in schema/vswitch.columns.
// Usage: node packages/ovsdb/tools/gen-vswitch-schema.mjs [OUT]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, '..', '..', '..', 'configs', 'vswitch.ovsschema');
const lines = readFileSync(join(here, '..', 'schema', 'vswitch.columns'), 'utf8').split('\n');

const BASE_RE = /^(integer|real|boolean|string|uuid)(?:(->|~>)(\w+))?(?:\{([^}]*)\})?(?:\[([^\]]*)\])?$/;

function base(text, where) {
  const m = BASE_RE.exec(text);
  if (!m) throw new Error(`${where}: cannot read base type "${text}"`);
  const [, type, arrow, refTable, en, range] = m;
  const b = { type };
  if (refTable) {
    b.refTable = refTable;
    if (arrow === '~>') b.refType = 'weak';
  }
  if (en !== undefined) {
    const vals = en.split('|').map((v) => (type === 'integer' || type === 'real' ? Number(v) : type === 'boolean' ? v === 'true' : v));
    b.enum = vals.length === 1 ? vals[0] : ['set', vals];
  }
  if (range !== undefined) {
    const [lo, hi] = range.split('..');
    const [minK, maxK] = type === 'string' ? ['minLength', 'maxLength'] : type === 'real' ? ['minReal', 'maxReal'] : ['minInteger', 'maxInteger'];
    if (lo !== '') b[minK] = Number(lo);
    if (hi !== '') b[maxK] = Number(hi);
  }
  return Object.keys(b).length === 1 ? type : b;
}

function columnType(text, where) {
  const words = text.trim().split(/\s+/);
  let card = '1..1';
  if (/^\d+\.\.(\d+|\*)$/.test(words[words.length - 1])) card = words.pop();
  const [min, max] = card.split('..');
  const t = words[0] === 'map' ? { key: base(words[1], where), value: base(words[2], where) } : { key: base(words[0], where) };
  if (min !== '1') t.min = Number(min);
  if (max !== '1') t.max = max === '*' ? 'unlimited' : Number(max);
  return Object.keys(t).length === 1 && typeof t.key === 'string' ? t.key : t;
}

const tables = {};
let table;
lines.forEach((line, i) => {
  const where = `vswitch.columns:${i + 1}`;
  if (line.startsWith('#') || line.trim() === '') return;
  if (line.startsWith('table ')) {
    const [, name, ...attrs] = line.trim().split(/\s+/);
    table = { columns: {} };
    for (const a of attrs) {
      if (a === 'root') table.isRoot = true;
      else if (a.startsWith('maxRows=')) table.maxRows = Number(a.slice(8));
      else if (a.startsWith('index=')) (table.indexes ??= []).push(a.slice(6).split(','));
      else throw new Error(`${where}: unknown table attribute "${a}"`);
    }
    tables[name] = table;
    return;
  }
  const m = /^\s+(\w+):\s*([^;]+)((?:;\s*\w+\s*)*)$/.exec(line);
  if (!m || !table) throw new Error(`${where}: cannot read column line`);
  const col = { type: columnType(m[2], where) };
  for (const flag of m[3].split(';').map((f) => f.trim()).filter(Boolean)) {
    if (flag === 'ephemeral') col.ephemeral = true;
    else if (flag === 'immutable') col.mutable = false;
    else throw new Error(`${where}: unknown column flag "${flag}"`);
  }
  table.columns[m[1]] = col;
});

/**
 * POSIX `cksum` (CRC-32 with polynomial 0x04C11DB7 over the bytes, then the
 * length): OVS's schema "cksum" is this checksum of the schema file with the
 * cksum line left out.
 */
function posixCksum(buf) {
  let crc = 0;
  const step = (byte) => {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    crc >>>= 0;
  };
  for (const b of buf) step(b);
  for (let n = buf.length; n > 0; n = Math.floor(n / 256)) step(n & 0xff);
  return `${~crc >>> 0} ${buf.length}`;
}

const schema = { name: 'Open_vSwitch', version: '8.3.1', tables };
const text = JSON.stringify(schema, null, 1) + '\n';
const cksum = posixCksum(Buffer.from(text, 'utf8'));
writeFileSync(out, text.replace('{\n', `{\n "cksum": "${cksum}",\n`));
process.stderr.write(`wrote ${out}: ${Object.keys(tables).length} tables\n`);
