/**
 * Safe, versioned codec for task arguments and the envelope that carries them.
 *
 * Arguments become a JSON-safe "tree": plain JSON values stay as they are, everything else is a
 * tagged object `{"$t": tag, ...}`:
 *   undefined            {"$t":"undef"}
 *   NaN, ±Infinity, -0   {"$t":"num","v":"NaN"|"Infinity"|"-Infinity"|"-0"}
 *   Date                 {"$t":"date","v":<epoch ms>|null}        (null = invalid Date)
 *   BigInt               {"$t":"bigint","v":"<decimal>"}
 *   Map                  {"$t":"map","v":[[key, value], ...]}      (insertion order kept)
 *   Set                  {"$t":"set","v":[value, ...]}
 *   Buffer / Uint8Array  {"$t":"buf"|"u8","v":"<base64>"}
 *   registered type      {"$t":"custom","n":"<name>","v":<tree of type.encode(value)>}
 *   object with a "$t" key is escaped as {"$t":"obj","v":{...its own keys, values as trees}}
 *
 * Documented choices:
 * - Sparse arrays come back dense: a hole decodes as `undefined`.
 * - Null-prototype objects are accepted and decode as ordinary objects.
 * - Only own enumerable string keys are kept (as with JSON); getters are read by value (possibly
 *   more than once, so they should be pure). Extra non-index properties of arrays are dropped.
 * - Built-ins match by exact prototype, so a subclass of Map/Date/... needs a registered codec.
 * - Typed arrays other than Uint8Array and Buffer, ArrayBuffer and DataView are rejected (convert to
 *   Uint8Array or register a codec): their byte order and element type would be guesswork.
 * - Shared (acyclic) references are encoded once per occurrence and decode as separate copies.
 *
 * Decoding never runs code other than the `decode` of a type registered by name, builds every
 * object itself (so `__proto__`, `constructor` and `prototype` keys become plain own properties)
 * and rejects anything malformed with CloudDeferError('INVALID_ENVELOPE').
 */
import { CloudDeferError } from './errors.js';
import { bytesToText, errorMessage, invalid, parseJson } from './json-bytes.js';

// The envelope has its own module; re-exported for code that imported it from here.
export { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION, type Envelope, type EnvelopeInput, type EnvelopeMeta } from './envelope.js';

/** Containers (arrays, objects, Map, Set, custom values) nested deeper than this are rejected. */
export const MAX_DEPTH = 1000;

export interface CustomType<T = unknown> {
  /** Unique name written into the payload; the decoding side must register the same name. */
  readonly name: string;
  is(value: unknown): value is T;
  /** Returns any value this codec can encode (plain data, Date, Map, other registered types...). */
  encode(value: T): unknown;
  decode(data: unknown): T;
}

export interface Codec {
  register<T>(type: CustomType<T>): void;
  /** UTF-8 JSON of the args tree; a Buffer, so honour byteOffset if you touch `.buffer`. */
  encodeArgs(args: readonly unknown[]): Uint8Array;
  decodeArgs(bytes: Uint8Array): unknown[];
  /** The JSON-safe tree of a value; it may share unchanged plain objects/arrays with the input. */
  encodeValue(value: unknown): unknown;
  decodeValue(tree: unknown): unknown;
  /** Decodes an args tree (e.g. `Envelope.argsTree`) and checks that it is an array. */
  decodeArgsTree(tree: unknown): unknown[];
}

const TAG = '$t';
const hasOwn = Object.hasOwn;
const ObjectProto = Object.prototype;

/** Defines `key` as an own data property; plain assignment of `__proto__` would set the prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Path segments: property names, array indexes, or a label such as `<map#0 key>`. */
type Segment = string | number | { readonly label: string };

interface EncodeState {
  readonly root: string;
  readonly path: Segment[];
  /** Objects currently being encoded: meeting one again means a cycle. */
  readonly ancestors: object[];
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function formatPath(st: EncodeState): string {
  const parts = st.path.map((s) =>
    typeof s === 'number' ? `[${s}]` : typeof s === 'string' ? (IDENTIFIER.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`) : s.label,
  );
  // Deep paths would swamp the message; the two ends are what locate the problem.
  const shown = parts.length > 24 ? [...parts.slice(0, 12), '…', ...parts.slice(-8)] : parts;
  return st.root + shown.join('');
}

function unserializable(st: EncodeState, what: string, cause?: unknown): CloudDeferError {
  return new CloudDeferError('UNSERIALIZABLE_ARGUMENT', `${formatPath(st)} ${what}`, cause === undefined ? undefined : { cause });
}

function className(value: object): string {
  const proto: unknown = Object.getPrototypeOf(value);
  const ctor = proto !== null && typeof proto === 'object' ? (proto as { constructor?: unknown }).constructor : undefined;
  return typeof ctor === 'function' && ctor.name ? ctor.name : 'an unnamed class';
}

function withArticle(name: string): string {
  return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const UNDEFINED_TREE = Object.freeze({ [TAG]: 'undef' });

function encodeNumber(n: number): unknown {
  if (Number.isFinite(n)) return n === 0 && 1 / n < 0 ? { [TAG]: 'num', v: '-0' } : n;
  return { [TAG]: 'num', v: String(n) };
}

/**
 * Fast path: true when `value` is already its own tree (plain JSON data without "$t" keys).
 * It keeps no path or cycle state; a cycle simply hits the depth limit and the full encoder, which
 * reports it, takes over. Symbol keys are left to the full encoder too (only enumerable ones fail).
 */
function isJsonSafe(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_DEPTH) return false;
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Array.prototype) {
        const arr = value as unknown[];
        for (let i = 0; i < arr.length; i++) if (!isJsonSafe(arr[i], depth + 1)) return false;
        return true;
      }
      if (proto !== ObjectProto && proto !== null) return false;
      if (hasOwn(value, TAG) || Object.getOwnPropertySymbols(value).length !== 0) return false;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj);
      for (let i = 0; i < keys.length; i++) if (!isJsonSafe(obj[keys[i]!], depth + 1)) return false;
      return true;
    }
  }
  return false;
}

class Encoder {
  constructor(private readonly types: ReadonlyMap<string, CustomType>) {}

  /** Returns `value` itself when it is already JSON-safe, so plain data costs no allocation. */
  node(value: unknown, st: EncodeState, depth: number): unknown {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        return encodeNumber(value);
      case 'undefined':
        return UNDEFINED_TREE;
      case 'bigint':
        return { [TAG]: 'bigint', v: value.toString() };
      case 'function':
        throw unserializable(st, 'is a function; functions cannot be deferred. Register it as a task, or pass plain data (e.g. an id) instead.');
      case 'symbol':
        throw unserializable(st, 'is a symbol; symbols cannot be deferred, pass a string instead.');
      case 'object':
        if (value === null) return null;
        return this.object(value, st, depth);
    }
    throw unserializable(st, `has unsupported type ${typeof value}`);
  }

  /** Containers count towards MAX_DEPTH (as on decode), leaves such as Date do not. */
  private enter(st: EncodeState, depth: number): number {
    if (depth >= MAX_DEPTH) throw unserializable(st, `is nested more than ${MAX_DEPTH} levels deep; flatten the data.`);
    return depth + 1;
  }

  private object(value: object, st: EncodeState, depth: number): unknown {
    if (st.ancestors.includes(value)) {
      throw unserializable(
        st,
        'is a circular reference; arguments must be a tree (shared references are copied, cycles cannot be). Break the cycle or pass ids.',
      );
    }
    st.ancestors.push(value);
    try {
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Array.prototype) return this.array(value as unknown[], st, depth);
      if (proto === ObjectProto || proto === null) return this.plain(value as Record<string, unknown>, st, depth);
      if (proto === Date.prototype) {
        const time = (value as Date).getTime();
        return { [TAG]: 'date', v: Number.isNaN(time) ? null : time };
      }
      if (proto === Map.prototype) return this.map(value as Map<unknown, unknown>, st, depth);
      if (proto === Set.prototype) return this.set(value as Set<unknown>, st, depth);
      if (proto === Buffer.prototype) return { [TAG]: 'buf', v: base64(value as Buffer) };
      if (proto === Uint8Array.prototype) return { [TAG]: 'u8', v: base64(value as Uint8Array) };
      return this.custom(value, st, depth);
    } finally {
      st.ancestors.pop();
    }
  }

  private array(arr: unknown[], st: EncodeState, parentDepth: number): unknown {
    const depth = this.enter(st, parentDepth);
    let out: unknown[] | undefined; // allocated only once an element needs a different tree
    const n = arr.length;
    for (let i = 0; i < n; i++) {
      st.path.push(i);
      const item = arr[i];
      const tree = this.node(item, st, depth);
      st.path.pop();
      if (out !== undefined) out.push(tree);
      else if (tree !== item) (out = arr.slice(0, i)).push(tree);
    }
    return out ?? arr;
  }

  private plain(obj: Record<string, unknown>, st: EncodeState, parentDepth: number): unknown {
    const depth = this.enter(st, parentDepth);
    const symbols = Object.getOwnPropertySymbols(obj);
    for (const sym of symbols) {
      if (Object.prototype.propertyIsEnumerable.call(obj, sym)) {
        throw unserializable(st, `has a symbol key ${String(sym)}; symbol-keyed properties cannot be deferred, use string keys.`);
      }
    }
    let out: Record<string, unknown> | undefined;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      st.path.push(key);
      const item = obj[key];
      const tree = this.node(item, st, depth);
      st.path.pop();
      if (out !== undefined) setOwn(out, key, tree);
      else if (tree !== item) {
        out = {};
        for (let j = 0; j < i; j++) setOwn(out, keys[j]!, obj[keys[j]!]);
        setOwn(out, key, tree);
      }
    }
    const body = out ?? obj;
    // A user key "$t" would read as a tag; wrapping marks the keys inside as plain data.
    return hasOwn(obj, TAG) ? { [TAG]: 'obj', v: body } : body;
  }

  private map(map: Map<unknown, unknown>, st: EncodeState, parentDepth: number): unknown {
    const depth = this.enter(st, parentDepth);
    const entries: unknown[] = [];
    let i = 0;
    for (const [key, val] of map) {
      st.path.push({ label: `<map#${i} key>` });
      const k = this.node(key, st, depth);
      st.path[st.path.length - 1] = { label: `<map#${i} value>` };
      const v = this.node(val, st, depth);
      st.path.pop();
      entries.push([k, v]);
      i++;
    }
    return { [TAG]: 'map', v: entries };
  }

  private set(set: Set<unknown>, st: EncodeState, parentDepth: number): unknown {
    const depth = this.enter(st, parentDepth);
    const items: unknown[] = [];
    let i = 0;
    for (const item of set) {
      st.path.push({ label: `<set#${i++}>` });
      items.push(this.node(item, st, depth));
      st.path.pop();
    }
    return { [TAG]: 'set', v: items };
  }

  private custom(value: object, st: EncodeState, depth: number): unknown {
    for (const type of this.types.values()) {
      let matches: boolean;
      let data: unknown;
      try {
        matches = type.is(value);
        if (matches) data = type.encode(value);
      } catch (err) {
        throw unserializable(st, `could not be encoded by codec "${type.name}": ${errorMessage(err)}`, err);
      }
      if (!matches) continue;
      depth = this.enter(st, depth);
      st.path.push({ label: `<${type.name}>` });
      const tree = this.node(data, st, depth);
      st.path.pop();
      return { [TAG]: 'custom', n: type.name, v: tree };
    }
    throw unserializable(st, this.rejection(value));
  }

  private rejection(value: object): string {
    if (value instanceof Promise) return 'is a Promise; await it before deferring and pass the result.';
    if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
      return `is ${withArticle(className(value))}, whose contents cannot be read; pass a Map, Set or plain data.`;
    }
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      return (
        `is ${withArticle(className(value))}; only Buffer and Uint8Array are supported. Convert it ` +
        '(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)) or register a codec with codec.register({...}).'
      );
    }
    return `is an instance of ${className(value)}, which has no codec; register a codec with codec.register({...}) or pass plain data.`;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BIGINT = /^-?(?:0|[1-9][0-9]*)$/;
const MAX_TIME = 8.64e15;

function enter(depth: number): number {
  if (depth >= MAX_DEPTH) throw invalid(`nested more than ${MAX_DEPTH} levels deep`);
  return depth + 1;
}

function keyCount(obj: object): number {
  let n = 0;
  for (const key in obj) if (hasOwn(obj, key)) n++;
  return n;
}

function decodeBase64(v: unknown, tag: string): Buffer {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64.test(v)) throw invalid(`"${tag}" value is not valid base64`);
  return Buffer.from(v, 'base64');
}

class Decoder {
  constructor(private readonly types: ReadonlyMap<string, CustomType>) {}

  node(tree: unknown, depth: number): unknown {
    switch (typeof tree) {
      case 'string':
      case 'boolean':
        return tree;
      case 'number':
        if (!Number.isFinite(tree)) throw invalid('non-finite number in tree');
        return tree;
      case 'object': {
        if (tree === null) return null;
        if (Array.isArray(tree)) return this.array(tree, enter(depth));
        const proto: unknown = Object.getPrototypeOf(tree);
        if (proto !== ObjectProto && proto !== null) throw invalid('tree contains a non-JSON object');
        const obj = tree as Record<string, unknown>;
        return hasOwn(obj, TAG) ? this.tagged(obj, depth) : this.plain(obj, enter(depth));
      }
    }
    throw invalid(`tree contains a ${typeof tree}`);
  }

  private array(tree: unknown[], depth: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < tree.length; i++) out.push(this.node(tree[i], depth));
    return out;
  }

  /** Builds a fresh ordinary object so hostile keys can only ever become own data properties. */
  private plain(tree: Record<string, unknown>, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key in tree) {
      if (hasOwn(tree, key)) setOwn(out, key, this.node(tree[key], depth));
    }
    return out;
  }

  private tagged(obj: Record<string, unknown>, parentDepth: number): unknown {
    const tag = obj[TAG];
    const v = obj.v;
    const expectKeys = (n: number): void => {
      if (keyCount(obj) !== n) throw invalid(`tagged value "${String(tag)}" has unexpected keys`);
    };
    switch (tag) {
      case 'undef':
        expectKeys(1);
        return undefined;
      case 'num':
        expectKeys(2);
        switch (v) {
          case 'NaN':
            return NaN;
          case 'Infinity':
            return Infinity;
          case '-Infinity':
            return -Infinity;
          case '-0':
            return -0;
        }
        throw invalid('"num" value must be NaN, Infinity, -Infinity or -0');
      case 'date':
        expectKeys(2);
        if (v === null) return new Date(NaN);
        if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > MAX_TIME) throw invalid('"date" value must be epoch milliseconds or null');
        return new Date(v);
      case 'bigint':
        expectKeys(2);
        if (typeof v !== 'string' || !BIGINT.test(v)) throw invalid('"bigint" value must be a decimal integer string');
        return BigInt(v);
      case 'buf':
        expectKeys(2);
        return decodeBase64(v, tag);
      case 'u8': {
        expectKeys(2);
        const buf = decodeBase64(v, tag);
        // Copy out of Buffer's shared pool: a plain Uint8Array should own its ArrayBuffer.
        const out = new Uint8Array(buf.length);
        out.set(buf);
        return out;
      }
      case 'map': {
        expectKeys(2);
        if (!Array.isArray(v)) throw invalid('"map" value must be an array of entries');
        const depth = enter(parentDepth);
        const map = new Map<unknown, unknown>();
        for (const entry of v as unknown[]) {
          if (!Array.isArray(entry) || entry.length !== 2) throw invalid('"map" entry must be a [key, value] pair');
          map.set(this.node(entry[0], depth), this.node(entry[1], depth));
        }
        return map;
      }
      case 'set': {
        expectKeys(2);
        if (!Array.isArray(v)) throw invalid('"set" value must be an array');
        const depth = enter(parentDepth);
        const set = new Set<unknown>();
        for (const item of v as unknown[]) set.add(this.node(item, depth));
        return set;
      }
      case 'obj': {
        expectKeys(2);
        const proto: unknown = v !== null && typeof v === 'object' ? Object.getPrototypeOf(v) : undefined;
        if ((proto !== ObjectProto && proto !== null) || Array.isArray(v)) throw invalid('"obj" value must be an object');
        return this.plain(v as Record<string, unknown>, enter(parentDepth));
      }
      case 'custom': {
        expectKeys(3);
        const name = obj.n;
        const type = typeof name === 'string' ? this.types.get(name) : undefined;
        if (type === undefined) {
          throw invalid(`unknown custom type ${JSON.stringify(name)}; register it with codec.register({...}) where tasks are run`);
        }
        const data = this.node(v, enter(parentDepth));
        try {
          return type.decode(data);
        } catch (err) {
          throw invalid(`custom type "${type.name}" failed to decode: ${errorMessage(err)}`, err);
        }
      }
    }
    throw invalid(`unknown tag ${JSON.stringify(tag)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Codec

function checkType(type: CustomType, existing: ReadonlyMap<string, CustomType>): void {
  const bad = (why: string): CloudDeferError => new CloudDeferError('INVALID_OPTION', `Cannot register codec: ${why}`);
  if (type === null || typeof type !== 'object') throw bad('expected { name, is, encode, decode }');
  if (typeof type.name !== 'string' || type.name === '') throw bad('name must be a non-empty string');
  if (typeof type.is !== 'function' || typeof type.encode !== 'function' || typeof type.decode !== 'function') {
    throw bad(`"${type.name}" needs is, encode and decode functions`);
  }
  if (existing.has(type.name)) throw bad(`a type named "${type.name}" is already registered`);
}

export function createCodec(options: { types?: readonly CustomType[] } = {}): Codec {
  const types = new Map<string, CustomType>();
  const encoder = new Encoder(types);
  const decoder = new Decoder(types);

  const encodeRoot = (value: unknown, root: string): unknown => {
    try {
      if (isJsonSafe(value, 0)) return value;
    } catch {
      // A throwing getter: the full encoder below reports it with its path.
    }
    const st: EncodeState = { root, path: [], ancestors: [] };
    try {
      return encoder.node(value, st, 0);
    } catch (err) {
      if (err instanceof CloudDeferError) throw err;
      // A throwing getter or proxy: the path stack still points at the property being read.
      throw unserializable(st, `could not be read: ${errorMessage(err)}`, err);
    }
  };

  const decodeValue = (tree: unknown): unknown => {
    try {
      return decoder.node(tree, 0);
    } catch (err) {
      // Last line of defence: whatever slipped through (e.g. a throwing getter) is still INVALID_ENVELOPE.
      if (err instanceof CloudDeferError) throw err;
      throw invalid(`cannot decode: ${errorMessage(err)}`, err);
    }
  };

  const decodeArgsTree = (tree: unknown): unknown[] => {
    if (!Array.isArray(tree)) throw invalid('args must be an array');
    return decodeValue(tree) as unknown[];
  };

  const codec: Codec = {
    register(type) {
      checkType(type as CustomType, types);
      types.set(type.name, type as CustomType);
    },
    encodeArgs(args) {
      if (!Array.isArray(args)) throw new CloudDeferError('UNSERIALIZABLE_ARGUMENT', 'args must be an array');
      return Buffer.from(JSON.stringify(encodeRoot(args, 'args')), 'utf8');
    },
    decodeArgs(bytes) {
      return decodeArgsTree(parseJson(bytesToText(bytes)));
    },
    encodeValue: (value) => encodeRoot(value, 'value'),
    decodeValue,
    decodeArgsTree,
  };
  for (const type of options.types ?? []) codec.register(type);
  return codec;
}

/** Shared codec used when the engine is given none; `defaultCodec.register` affects every user. */
export const defaultCodec: Codec = createCodec();
