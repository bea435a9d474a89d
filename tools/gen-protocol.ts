/**
 * Generates Strand's protocol codecs from Kafka's message specs.
 *
 *   node dist/tools/gen-protocol.js [--specs DIR] [--strand-specs DIR] [--check]
 *
 * Reads every `*Request.json` / `*Response.json` (plus the request and response headers and the
 * consumer-protocol data messages) from `../shared/kafka-protocol/messages/` (or --specs), and
 * Strand's own extension apis, in the same format, from `src/protocol/strand-specs/` (or
 * --strand-specs), and writes one TypeScript file per api into `src/protocol/messages/`: types,
 * plus an encoder and a decoder for every valid version, both derived from the same field list,
 * and an index with the api table (`ALL_APIS`: Kafka's; `STRAND_APIS`: the extensions, whose keys
 * must lie outside Kafka's; `API_BY_KEY` and `ApiKey`: both). With --check it writes nothing and exits 1 if any committed file differs from what
 * it would generate (CI's drift check).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface SpecField {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  flexibleVersions?: string;
  ignorable?: boolean;
  fields?: SpecField[];
}
interface SpecStruct {
  name: string;
  versions: string;
  fields: SpecField[];
}
interface Spec {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: SpecField[];
  commonStructs?: SpecStruct[];
}

/** An inclusive version range; `max` is Infinity for "N+", and the empty range is min > max. */
interface Range {
  min: number;
  max: number;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
const OUT = join(ROOT, 'src', 'protocol', 'messages');

function parseRange(s: string | undefined): Range {
  if (s === undefined || s === 'none' || s === '') return { min: 1, max: 0 };
  const plus = /^(\d+)\+$/.exec(s);
  if (plus) return { min: Number(plus[1]), max: Infinity };
  const span = /^(\d+)-(\d+)$/.exec(s);
  if (span) return { min: Number(span[1]), max: Number(span[2]) };
  if (/^\d+$/.test(s)) return { min: Number(s), max: Number(s) };
  throw new Error(`bad version range ${s}`);
}

function intersect(a: Range, b: Range): Range {
  return { min: Math.max(a.min, b.min), max: Math.min(a.max, b.max) };
}

const isEmpty = (r: Range): boolean => r.min > r.max;
const covers = (outer: Range, inner: Range): boolean => isEmpty(inner) || (outer.min <= inner.min && outer.max >= inner.max);

/** A condition on `version` that holds exactly on `r`, given that version is within `within`. */
function cond(r: Range, within: Range): string {
  if (isEmpty(intersect(r, within))) return 'false';
  const parts: string[] = [];
  if (r.min > within.min) parts.push(`version >= ${r.min}`);
  if (r.max < within.max) parts.push(`version <= ${r.max}`);
  return parts.length === 0 ? 'true' : parts.join(' && ');
}

function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*\/\//.test(line))
    .join('\n');
}

/** The TypeScript name of a struct: prefixed with its message's name unless it already starts with it. */
const sn = (ctx: { prefix: string }, name: string): string => (name.startsWith(ctx.prefix) ? name : ctx.prefix + name);

const camel = (name: string): string => name.charAt(0).toLowerCase() + name.slice(1);

const PRIMITIVES = new Set(['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'string', 'bytes', 'records', 'uuid']);

const elementType = (type: string): string | null => (type.startsWith('[]') ? type.slice(2) : null);

interface Ctx {
  prefix: string;
  spec: Spec;
  valid: Range;
  flexible: Range;
  structs: Map<string, { fields: SpecField[]; versions: Range }>;
  out: string[];
}

/** The TypeScript type of a field's value. */
function tsType(ctx: Ctx, f: SpecField): string {
  const nullable = !isEmpty(parseRange(f.nullableVersions));
  const el = elementType(f.type);
  let t: string;
  if (el !== null) {
    t = `${PRIMITIVES.has(el) ? primitiveTs(el) : sn(ctx, el)}[]`;
  } else if (PRIMITIVES.has(f.type)) {
    t = primitiveTs(f.type);
  } else {
    t = sn(ctx, f.type);
  }
  return nullable ? `${t} | null` : t;
}

function primitiveTs(type: string): string {
  switch (type) {
    case 'bool':
      return 'boolean';
    case 'string':
    case 'uuid':
      return 'string';
    case 'bytes':
      return 'Buffer';
    case 'records':
      return 'Records';
    default:
      return 'number';
  }
}

/** The default value expression of a field, as Kafka's generated code would set it. */
function defaultExpr(ctx: Ctx, f: SpecField): string {
  const d = f.default;
  const el = elementType(f.type);
  if (d === 'null') return 'null';
  if (el !== null) return '[]';
  switch (f.type) {
    case 'bool':
      return d === true || d === 'true' ? 'true' : 'false';
    case 'string':
      return JSON.stringify(d === undefined ? '' : String(d));
    case 'uuid':
      return 'ZERO_UUID';
    case 'bytes':
      return 'EMPTY';
    case 'records':
      return isEmpty(parseRange(f.nullableVersions)) ? 'EMPTY' : 'null';
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float64':
      return d === undefined ? '0' : String(Number(d));
    default:
      return `default${sn(ctx, f.type)}()`;
  }
}

function collectStructs(ctx: Ctx, fields: SpecField[], versions: Range): void {
  for (const f of fields) {
    const name = elementType(f.type) ?? f.type;
    if (f.fields !== undefined) {
      const v = intersect(versions, parseRange(f.versions));
      ctx.structs.set(name, { fields: f.fields, versions: v });
      collectStructs(ctx, f.fields, v);
    }
  }
}

/** Writer/Reader method names for a primitive, given flexibility and nullability known at generation time or at run time. */
function writePrimitive(type: string, value: string, flex: string, nullable: string): string {
  switch (type) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float64':
    case 'uuid':
      return `w.${type}(${value});`;
    case 'string':
      return pick(flex, nullable, `w.compactNullableString(${value})`, `w.compactString(${value} as string)`, `w.nullableString(${value})`, `w.string(${value} as string)`);
    case 'bytes':
    case 'records':
      return pick(flex, nullable, `w.compactNullableBytes(${value})`, `w.compactBytes(${value} as Buffer)`, `w.nullableBytes(${value})`, `w.bytes(${value} as Buffer)`).replaceAll(' as Buffer', type === 'records' ? ' as Records' : ' as Buffer');
  }
  throw new Error(`no writer for ${type}`);
}

function readPrimitive(type: string, flex: string, nullable: string): string {
  switch (type) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float64':
    case 'uuid':
      return `r.${type}()`;
    case 'string':
      return pick(flex, nullable, 'r.compactNullableString()', 'r.compactString()', 'r.nullableString()', 'r.string()');
    case 'bytes':
    case 'records':
      return pick(flex, nullable, 'r.compactNullableBytes()', 'r.compactBytes()', 'r.nullableBytes()', 'r.bytes()');
  }
  throw new Error(`no reader for ${type}`);
}

/** Chooses among four expressions by two boolean expressions, folding constants. */
function pick(flex: string, nullable: string, fn: string, fnn: string, cn: string, cnn: string): string {
  const byNull = (a: string, b: string): string => (nullable === 'true' ? a : nullable === 'false' ? b : `(${nullable} ? ${a} : ${b})`);
  if (flex === 'true') return byNull(fn, fnn);
  if (flex === 'false') return byNull(cn, cnn);
  return `(${flex} ? ${byNull(fn, fnn)} : ${byNull(cn, cnn)})`;
}

const MIN_BYTES: Record<string, number> = { bool: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, float64: 8, uuid: 16 };

function fieldFlex(ctx: Ctx, f: SpecField, within: Range): string {
  const flex = f.flexibleVersions !== undefined ? parseRange(f.flexibleVersions) : ctx.flexible;
  return cond(flex, within);
}

/** Emits the encoder statements for one field's value (`value`) into `lines`. */
function emitWrite(ctx: Ctx, f: SpecField, value: string, within: Range, lines: string[], indent: string): void {
  const flex = fieldFlex(ctx, f, within);
  const nullable = cond(parseRange(f.nullableVersions), within);
  const el = elementType(f.type);
  if (el !== null) {
    const inner = PRIMITIVES.has(el) ? writePrimitive(el, 'e', flex, 'false') : `encode${sn(ctx, el)}(w, e, version);`;
    lines.push(`${indent}{`);
    lines.push(`${indent}  const a = ${value};`);
    if (nullable !== 'true') {
      const guard = nullable === 'false' ? 'a === null' : `a === null && !(${nullable})`;
      lines.push(`${indent}  if (${guard}) throw new TypeError('${f.name} is not nullable in this version');`);
    }
    lines.push(`${indent}  w.arrayLength(a === null ? -1 : a.length, ${flex});`);
    lines.push(`${indent}  if (a !== null) for (const e of a) ${inner}`);
    lines.push(`${indent}}`);
    return;
  }
  if (PRIMITIVES.has(f.type)) {
    if (nullable === 'false' && ['string', 'bytes', 'records'].includes(f.type)) {
      lines.push(`${indent}if (${value} === null) throw new TypeError('${f.name} is not nullable in this version');`);
    }
    if (nullable !== 'true' && nullable !== 'false' && ['string', 'bytes', 'records'].includes(f.type)) {
      lines.push(`${indent}if (${value} === null && !(${nullable})) throw new TypeError('${f.name} is not nullable in this version');`);
    }
    const stmt = writePrimitive(f.type, value, flex, nullable);
    lines.push(`${indent}${stmt.endsWith(';') ? stmt : stmt + ';'}`);
    return;
  }
  // A struct field: nullable structs carry an INT8 presence marker (-1 null, 1 present).
  if (!isEmpty(parseRange(f.nullableVersions))) {
    lines.push(`${indent}if (${value} === null) { w.int8(-1); } else { w.int8(1); encode${sn(ctx, f.type)}(w, ${value}, version); }`);
  } else {
    lines.push(`${indent}encode${sn(ctx, f.type)}(w, ${value}, version);`);
  }
}

function emitRead(ctx: Ctx, f: SpecField, target: string, within: Range, lines: string[], indent: string): void {
  const flex = fieldFlex(ctx, f, within);
  const nullable = cond(parseRange(f.nullableVersions), within);
  const el = elementType(f.type);
  if (el !== null) {
    const min = MIN_BYTES[el] ?? 1;
    lines.push(`${indent}{`);
    lines.push(`${indent}  const n = r.arrayLength(${flex}, ${min});`);
    if (nullable === 'false') {
      lines.push(`${indent}  if (n < 0) r.fail('${f.name} is null but not nullable');`);
    }
    const item = PRIMITIVES.has(el) ? readPrimitive(el, flex, 'false') : `decode${sn(ctx, el)}(r, version)`;
    const nullValue = nullable === 'false' ? '[]' : 'null';
    lines.push(`${indent}  if (n < 0) ${target} = ${nullValue};`);
    lines.push(`${indent}  else { const a = new Array(n); for (let i = 0; i < n && r.ok; i++) a[i] = ${item}; ${target} = r.ok ? a : []; }`);
    lines.push(`${indent}}`);
    return;
  }
  if (PRIMITIVES.has(f.type)) {
    lines.push(`${indent}${target} = ${readPrimitive(f.type, flex, nullable)};`);
    return;
  }
  if (!isEmpty(parseRange(f.nullableVersions))) {
    lines.push(`${indent}${target} = r.int8() < 0 ? null : decode${sn(ctx, f.type)}(r, version);`);
  } else {
    lines.push(`${indent}${target} = decode${sn(ctx, f.type)}(r, version);`);
  }
}

/** The expression that is true when a tagged field holds its default (and so is not written). */
function isDefaultExpr(ctx: Ctx, f: SpecField, value: string): string {
  const el = elementType(f.type);
  const d = defaultExpr(ctx, f);
  if (d === 'null') return `${value} === null`;
  if (el !== null) return `${value} !== null && ${value}.length === 0`;
  if (f.type === 'bytes' || f.type === 'records') return `${value} !== null && ${value}.length === 0`;
  if (PRIMITIVES.has(f.type)) return `${value} === ${d}`;
  return `isDefault${sn(ctx, f.type)}(${value})`;
}

function emitStruct(ctx: Ctx, typeName: string, fields: SpecField[], versions: Range, isTop: boolean): void {
  const within = intersect(versions, ctx.valid);
  const tsName = isTop ? ctx.prefix : sn(ctx, typeName);
  const out = ctx.out;

  out.push(`export interface ${tsName} {`);
  for (const f of fields) out.push(`  ${camel(f.name)}: ${tsType(ctx, f)};`);
  if (fields.length === 0) out.push('  // no fields');
  out.push('}', '');

  out.push(`export function default${tsName}(): ${tsName} {`);
  out.push(`  return { ${fields.map((f) => `${camel(f.name)}: ${defaultExpr(ctx, f)}`).join(', ')} };`);
  out.push('}', '');

  out.push(`export function isDefault${tsName}(v: ${tsName}): boolean {`);
  out.push(`  return ${fields.map((f) => isDefaultExpr(ctx, f, `v.${camel(f.name)}`)).join(' && ') || 'true'};`);
  out.push('}', '');

  // Encoder.
  const enc: string[] = [];
  const flexCond = cond(ctx.flexible, within);
  const tagged = fields.filter((f) => f.tag !== undefined);
  for (const f of fields) {
    if (f.tag !== undefined) continue;
    const present = intersect(parseRange(f.versions), within);
    const c = cond(present, within);
    if (c === 'false') continue;
    const lines: string[] = [];
    emitWrite(ctx, f, `v.${camel(f.name)}`, present, lines, c === 'true' ? '  ' : '    ');
    if (c === 'true') enc.push(...lines);
    else enc.push(`  if (${c}) {`, ...lines, '  }');
  }
  if (flexCond !== 'false') {
    const tagLines: string[] = [];
    if (tagged.length === 0) {
      tagLines.push('    w.uint8(0);');
    } else {
      tagLines.push('    const tags: Array<[number, Buffer]> = [];');
      for (const f of [...tagged].sort((a, b) => a.tag! - b.tag!)) {
        const tv = intersect(intersect(parseRange(f.taggedVersions), parseRange(f.versions)), within);
        const c = cond(tv, within);
        if (c === 'false') continue;
        const val = `v.${camel(f.name)}`;
        const inner: string[] = [];
        emitWrite(ctx, { ...f, flexibleVersions: undefined }, val, tv, inner, '      ');
        tagLines.push(`    if (${c === 'true' ? '' : `${c} && `}!(${isDefaultExpr(ctx, f, val)})) {`);
        tagLines.push('      const w = new Writer(64);');
        tagLines.push(...inner);
        tagLines.push(`      tags.push([${f.tag}, w.toBuffer()]);`);
        tagLines.push('    }');
      }
      tagLines.push('    w.unsignedVarint(tags.length);');
      tagLines.push('    for (const [tag, bytes] of tags) { w.unsignedVarint(tag); w.unsignedVarint(bytes.length); w.raw(bytes); }');
    }
    if (flexCond === 'true') enc.push(...tagLines.map((l) => l.slice(2)));
    else enc.push(`  if (${flexCond}) {`, ...tagLines, '  }');
  }
  const usesVersion = enc.some((l) => /version/.test(l));
  const usesV = enc.some((l) => /\bv\./.test(l));
  out.push(`export function encode${tsName}(w: Writer, ${usesV ? 'v' : '_v'}: ${tsName}, ${usesVersion ? 'version' : '_version'}: number): void {`);
  out.push(...enc);
  out.push('}', '');

  // Decoder.
  const dec: string[] = [];
  dec.push(`  const v = default${tsName}();`);
  for (const f of fields) {
    if (f.tag !== undefined) continue;
    const present = intersect(parseRange(f.versions), within);
    const c = cond(present, within);
    if (c === 'false') continue;
    const lines: string[] = [];
    emitRead(ctx, f, `v.${camel(f.name)}`, present, lines, c === 'true' ? '  ' : '    ');
    if (c === 'true') dec.push(...lines);
    else dec.push(`  if (${c}) {`, ...lines, '  }');
  }
  if (flexCond !== 'false') {
    const tagLines: string[] = [];
    const cases: string[] = [];
    for (const f of tagged) {
      const tv = intersect(intersect(parseRange(f.taggedVersions), parseRange(f.versions)), within);
      const c = cond(tv, within);
      if (c === 'false') continue;
      const inner: string[] = [];
      emitRead(ctx, { ...f, flexibleVersions: undefined }, `v.${camel(f.name)}`, tv, inner, '        ');
      cases.push(`      case ${f.tag}:`, `        if (!(${c})) return false;`, ...inner, '        return true;');
    }
    if (cases.length === 0) {
      tagLines.push('    r.taggedFields();');
    } else {
      tagLines.push('    r.taggedFields((tag, _size, r) => {', '      switch (tag) {', ...cases, '      }', '      return false;', '    });');
    }
    if (flexCond === 'true') dec.push(...tagLines.map((l) => l.slice(2)));
    else dec.push(`  if (${flexCond}) {`, ...tagLines, '  }');
  }
  dec.push('  return v;');
  const decUsesVersion = dec.some((l) => /version/.test(l));
  out.push(`export function decode${tsName}(r: Reader, ${decUsesVersion ? 'version' : '_version'}: number): ${tsName} {`);
  out.push(...dec);
  out.push('}', '');
}

function generateMessage(spec: Spec, out: string[]): void {
  const valid = parseRange(spec.validVersions);
  const ctx: Ctx = {
    prefix: spec.name,
    spec,
    valid,
    flexible: parseRange(spec.flexibleVersions),
    structs: new Map(),
    out,
  };
  for (const cs of spec.commonStructs ?? []) {
    ctx.structs.set(cs.name, { fields: cs.fields, versions: parseRange(cs.versions) });
    collectStructs(ctx, cs.fields, parseRange(cs.versions));
  }
  collectStructs(ctx, spec.fields, valid);
  for (const [name, s] of ctx.structs) emitStruct(ctx, name, s.fields, s.versions, false);
  emitStruct(ctx, spec.name, spec.fields, valid, true);
}

const fileNameOf = (api: string): string => api.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function loadSpec(dir: string, file: string): Spec {
  return JSON.parse(stripComments(readFileSync(join(dir, file), 'utf8'))) as Spec;
}

const HEADER = (sources: string[], owner = "Kafka's message specs"): string =>
  [
    `// Generated by tools/gen-protocol.ts from ${owner} (${sources.join(', ')}).`,
    '// Do not edit: change the generator and run `npm run generate`.',
    '/* eslint-disable */',
    "import { Reader, EMPTY, ZERO_UUID } from '../reader.js';",
    "import { Writer, type Records } from '../writer.js';",
    'void EMPTY; void ZERO_UUID;',
    'export type { Records };',
    '',
  ].join('\n');

function generate(specDir: string, strandDir: string | null): Map<string, string> {
  const files = new Map<string, string>();
  const apis: Array<{ key: number; name: string; file: string; valid: Range; flexible: Range; strand: boolean }> = [];
  const sources: Array<{ dir: string; strand: boolean }> = [{ dir: specDir, strand: false }];
  if (strandDir !== null) sources.push({ dir: strandDir, strand: true });
  for (const { dir, strand } of sources) {
    const specs = readdirSync(dir).filter((f) => f.endsWith('.json'));
    for (const file of specs.filter((f) => f.endsWith('Request.json')).sort()) {
      const api = basename(file, 'Request.json');
      const req = loadSpec(dir, file);
      if (req.apiKey === undefined) continue;
      const respFile = `${api}Response.json`;
      if (!specs.includes(respFile)) continue;
      const resp = loadSpec(dir, respFile);
      if (strand && apis.some((a) => a.key === req.apiKey || a.name === api)) throw new Error(`Strand spec ${file}: api key ${req.apiKey} or name ${api} collides with a Kafka api`);
      const out: string[] = [HEADER([file, respFile], strand ? "Strand's own message specs in src/protocol/strand-specs/" : undefined)];
      generateMessage(req, out);
      generateMessage(resp, out);
      const valid = parseRange(req.validVersions);
      const flexible = parseRange(req.flexibleVersions);
      out.push(`export const ${api}Api = {`);
      out.push(`  key: ${req.apiKey},`);
      out.push(`  name: '${api}',`);
      out.push(`  minVersion: ${valid.min},`);
      out.push(`  maxVersion: ${valid.max},`);
      out.push(`  /** First flexible version (KIP-482), or -1. */`);
      out.push(`  flexibleFrom: ${isEmpty(flexible) ? -1 : flexible.min},`);
      out.push(`  encodeRequest: encode${api}Request,`);
      out.push(`  decodeRequest: decode${api}Request,`);
      out.push(`  encodeResponse: encode${api}Response,`);
      out.push(`  decodeResponse: decode${api}Response,`);
      out.push(`  defaultRequest: default${api}Request,`);
      out.push(`  defaultResponse: default${api}Response,`);
      out.push('} as const;', '');
      files.set(`${fileNameOf(api)}.ts`, out.join('\n'));
      apis.push({ key: req.apiKey, name: api, file: fileNameOf(api), valid, flexible, strand });
    }
  }
  // Headers and the consumer protocol's embedded data messages.
  const extras: Array<[string, string[]]> = [
    ['headers.ts', ['RequestHeader.json', 'ResponseHeader.json']],
    ['consumer-protocol.ts', ['ConsumerProtocolSubscription.json', 'ConsumerProtocolAssignment.json']],
  ];
  for (const [name, sources] of extras) {
    const out: string[] = [HEADER(sources)];
    for (const s of sources) generateMessage(loadSpec(specDir, s), out);
    files.set(name, out.join('\n'));
  }
  apis.sort((a, b) => a.key - b.key);
  const idx: string[] = [
    "// Generated by tools/gen-protocol.ts. Do not edit: run `npm run generate`.",
    '',
    ...apis.map((a) => `import { ${a.name}Api } from './${a.file}.js';`),
    '',
    ...apis.map((a) => `export * from './${a.file}.js';`),
    "export * from './headers.js';",
    "export * from './consumer-protocol.js';",
    '',
    '/** Every api in Kafka\'s message specs, by api key. */',
    'export const ALL_APIS = [',
    ...apis.filter((a) => !a.strand).map((a) => `  ${a.name}Api,`),
    '] as const;',
    '',
    '/** Strand\'s extension apis (src/protocol/strand-specs/), keys outside Kafka\'s range. */',
    'export const STRAND_APIS = [',
    ...apis.filter((a) => a.strand).map((a) => `  ${a.name}Api,`),
    '] as const;',
    '',
    'export type AnyApi = (typeof ALL_APIS)[number] | (typeof STRAND_APIS)[number];',
    '',
    'export const API_BY_KEY: ReadonlyMap<number, AnyApi> = new Map<number, AnyApi>([...ALL_APIS, ...STRAND_APIS].map((a) => [a.key, a]));',
    '',
    'export const ApiKey = {',
    ...apis.map((a) => `  ${a.name}: ${a.key},`),
    '} as const;',
    '',
  ];
  files.set('index.ts', idx.join('\n'));
  return files;
}

function main(): void {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const i = args.indexOf('--specs');
  const specDir = i >= 0 ? args[i + 1]! : join(ROOT, '..', 'shared', 'kafka-protocol', 'messages');
  const j = args.indexOf('--strand-specs');
  const strandDir = j >= 0 ? args[j + 1]! : join(ROOT, 'src', 'protocol', 'strand-specs');
  if (!existsSync(specDir)) {
    console.error(`gen-protocol: spec directory ${specDir} not found`);
    process.exit(2);
  }
  const files = generate(specDir, existsSync(strandDir) ? strandDir : null);
  if (check) {
    const stale: string[] = [];
    for (const [name, text] of files) {
      const path = join(OUT, name);
      if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(name);
    }
    const extra = existsSync(OUT) ? readdirSync(OUT).filter((f) => !files.has(f)) : [];
    if (stale.length > 0 || extra.length > 0) {
      console.error(`gen-protocol: generated code is out of date: ${[...stale, ...extra.map((e) => `${e} (not generated)`)].join(', ')}. Run \`npm run generate\`.`);
      process.exit(1);
    }
    console.log(`gen-protocol: ${files.size} generated files match the specs`);
    return;
  }
  mkdirSync(OUT, { recursive: true });
  for (const [name, text] of files) writeFileSync(join(OUT, name), text);
  console.log(`gen-protocol: wrote ${files.size} files to ${OUT}`);
}

main();
