/**
 * Random message values built from Kafka's message specs (read from ../shared at test time), for
 * round-trip property tests of the generated codecs. Fields absent from a version keep the
 * generated defaults, so `decode(encode(v))` must deep-equal `v`.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SPEC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..', 'shared', 'kafka-protocol', 'messages');
/** Strand's own extension apis, in the same format. */
export const STRAND_SPEC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'src', 'protocol', 'strand-specs');

export interface SpecField {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  fields?: SpecField[];
}
export interface Spec {
  apiKey?: number;
  name: string;
  validVersions: string;
  fields: SpecField[];
  commonStructs?: Array<{ name: string; fields: SpecField[] }>;
}

export function loadSpec(file: string): Spec {
  const dir = existsSync(join(SPEC_DIR, file)) ? SPEC_DIR : STRAND_SPEC_DIR;
  const text = readFileSync(join(dir, file), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*\/\//.test(l))
    .join('\n');
  return JSON.parse(text) as Spec;
}

export const specFiles = (): string[] => readdirSync(SPEC_DIR).filter((f) => f.endsWith('.json'));

export function inRange(s: string | undefined, v: number): boolean {
  if (s === undefined || s === 'none') return false;
  let m = /^(\d+)\+$/.exec(s);
  if (m) return v >= Number(m[1]);
  m = /^(\d+)-(\d+)$/.exec(s);
  if (m) return v >= Number(m[1]) && v <= Number(m[2]);
  return v === Number(s);
}

export function versionRange(s: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new Error(`bad validVersions ${s}`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

export { prng } from './prng.js';

const camel = (n: string): string => n.charAt(0).toLowerCase() + n.slice(1);

export class ValueMaker {
  private structs = new Map<string, SpecField[]>();
  constructor(
    private readonly spec: Spec,
    private readonly mod: Record<string, unknown>,
    private readonly rand: () => number,
  ) {
    for (const cs of spec.commonStructs ?? []) this.structs.set(cs.name, cs.fields);
    const walk = (fields: SpecField[]): void => {
      for (const f of fields) {
        if (f.fields) {
          this.structs.set(f.type.replace(/^\[\]/, ''), f.fields);
          walk(f.fields);
        }
      }
    };
    walk(spec.fields);
    for (const cs of spec.commonStructs ?? []) walk(cs.fields);
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  private primitive(type: string): unknown {
    switch (type) {
      case 'bool':
        return this.rand() < 0.5;
      case 'int8':
        return this.int(-128, 127);
      case 'int16':
        return this.int(-32768, 32767);
      case 'uint16':
        return this.int(0, 65535);
      case 'int32':
        return this.int(-2147483648, 2147483647);
      case 'uint32':
        return this.int(0, 4294967295);
      case 'int64':
        return this.int(-(2 ** 52), 2 ** 52);
      case 'float64':
        return this.rand() * 1e6 - 5e5;
      case 'uuid': {
        const b = Buffer.alloc(16);
        for (let i = 0; i < 16; i++) b[i] = this.int(0, 255);
        return b.toString('base64url');
      }
      case 'string': {
        const n = this.int(0, 12);
        let s = '';
        for (let i = 0; i < n; i++) s += 'abcdefghijklmnopqrstuvwxyzé-._ü'.charAt(this.int(0, 30));
        return s;
      }
      case 'bytes':
      case 'records': {
        const b = Buffer.alloc(this.int(0, 20));
        for (let i = 0; i < b.length; i++) b[i] = this.int(0, 255);
        return b;
      }
    }
    throw new Error(`unknown primitive ${type}`);
  }

  private isPrimitive(t: string): boolean {
    return ['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'uuid', 'string', 'bytes', 'records'].includes(t);
  }

  /** A random value of struct `typeName` (the top level when typeName is null) for `version`. */
  struct(typeName: string | null, version: number, depth = 0): Record<string, unknown> {
    const fields = typeName === null ? this.spec.fields : this.structs.get(typeName)!;
    const tsName = typeName === null ? this.spec.name : typeName.startsWith(this.spec.name) ? typeName : this.spec.name + typeName;
    const fn = this.mod[`default${tsName}`] as () => Record<string, unknown>;
    const v = fn();
    for (const f of fields) {
      if (!inRange(f.versions, version)) continue;
      if (f.tag !== undefined && !inRange(f.taggedVersions, version)) continue;
      if (inRange(f.nullableVersions, version) && this.rand() < 0.15) {
        v[camel(f.name)] = null;
        continue;
      }
      const el = f.type.startsWith('[]') ? f.type.slice(2) : null;
      if (el !== null) {
        const n = depth > 3 ? 0 : this.int(0, 3);
        const a: unknown[] = [];
        for (let i = 0; i < n; i++) a.push(this.isPrimitive(el) ? this.primitive(el) : this.struct(el, version, depth + 1));
        v[camel(f.name)] = a;
      } else if (this.isPrimitive(f.type)) {
        v[camel(f.name)] = this.primitive(f.type);
      } else {
        v[camel(f.name)] = this.struct(f.type, version, depth + 1);
      }
    }
    return v;
  }
}
