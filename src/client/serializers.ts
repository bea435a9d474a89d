/**
 * Serializers turn a record's key and value into bytes (producer); deserializers the reverse
 * (consumer). `null` stays null (a tombstone, or no key) in both directions.
 */
export interface Serializer<T> {
  serialize(value: T, topic: string): Buffer | null;
}

export interface Deserializer<T> {
  deserialize(data: Buffer | null, topic: string): T;
}

export type Serde<T> = Serializer<T> & Deserializer<T>;

/** UTF-8 strings. */
export const stringSerde: Serde<string | null> = {
  serialize: (v) => (v === null || v === undefined ? null : Buffer.from(v, 'utf8')),
  deserialize: (d) => (d === null ? null : d.toString('utf8')),
};

/** JSON documents (UTF-8). `undefined` and `null` serialize to null. */
export function jsonSerde<T = unknown>(): Serde<T | null> {
  return {
    serialize: (v) => (v === null || v === undefined ? null : Buffer.from(JSON.stringify(v), 'utf8')),
    deserialize: (d) => (d === null ? null : (JSON.parse(d.toString('utf8')) as T)),
  };
}

/** Raw bytes, as given; strings are accepted and written as UTF-8. */
export const bytesSerde: Serde<Buffer | Uint8Array | string | null> & Deserializer<Buffer | null> = {
  serialize: (v) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength)),
  deserialize: (d) => d,
};

export const serializers = {
  string: stringSerde,
  json: jsonSerde,
  bytes: bytesSerde,
} as const;
