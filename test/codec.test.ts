import assert from 'node:assert/strict';
import { createCodec, decodeEnvelope, defaultCodec, encodeEnvelope, ENVELOPE_VERSION, MAX_DEPTH, type CustomType } from '../src/core/codec.js';
import { CloudDeferError } from '../src/core/errors.js';

const codec = defaultCodec;
const roundTrip = (args: unknown[]): unknown[] => codec.decodeArgs(codec.encodeArgs(args));
const one = (value: unknown): unknown => roundTrip([value])[0];
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Asserts a CloudDeferError with `code` whose message matches `pattern`. */
function rejects(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CloudDeferError, `expected CloudDeferError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}
const invalid = (fn: () => unknown, pattern?: RegExp): void => rejects(fn, 'INVALID_ENVELOPE', pattern);
const unserializable = (fn: () => unknown, pattern?: RegExp): void => rejects(fn, 'UNSERIALIZABLE_ARGUMENT', pattern);

function nestedArrays(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

class Money {
  constructor(
    readonly cents: bigint,
    readonly currency: string,
  ) {}
}
const moneyType: CustomType<Money> = {
  name: 'Money',
  is: (v): v is Money => v instanceof Money,
  encode: (m) => ({ cents: m.cents, currency: m.currency }),
  decode: (d) => {
    const { cents, currency } = d as { cents: bigint; currency: string };
    return new Money(cents, currency);
  },
};

describe('codec', () => {
  describe('round trips', () => {
    it('keeps JSON values as they are', () => {
      const args = [null, true, false, 0, 1.5, -42, 'Ada', '', 'ünï😀\ud800', [1, [2, []]], { a: { b: [{}] } }];
      assert.deepStrictEqual(roundTrip(args), args);
    });

    it('keeps undefined as a value, an array element and an object property', () => {
      const out = roundTrip([undefined, [1, undefined, 3], { a: undefined, b: 1 }]);
      assert.deepStrictEqual(out, [undefined, [1, undefined, 3], { a: undefined, b: 1 }]);
      assert.equal(out.length, 3);
      assert.ok(Object.hasOwn(out[2] as object, 'a'));
    });

    it('turns sparse array holes into undefined', () => {
      // eslint-disable-next-line no-sparse-arrays
      const out = one([1, , 3]) as unknown[];
      assert.deepStrictEqual(out, [1, undefined, 3]);
      assert.ok(1 in out);
    });

    it('keeps -0, NaN and the infinities', () => {
      const [negZero, nan, inf, negInf, zero] = roundTrip([-0, NaN, Infinity, -Infinity, 0]);
      assert.ok(Object.is(negZero, -0));
      assert.ok(Object.is(nan, NaN));
      assert.equal(inf, Infinity);
      assert.equal(negInf, -Infinity);
      assert.ok(Object.is(zero, 0));
    });

    it('keeps Dates, including an invalid Date', () => {
      const date = new Date('2024-02-29T12:34:56.789Z');
      const [d, bad] = roundTrip([date, new Date('nope')]);
      assert.ok(d instanceof Date);
      assert.equal((d as Date).getTime(), date.getTime());
      assert.ok(bad instanceof Date);
      assert.ok(Number.isNaN((bad as Date).getTime()));
      assert.deepStrictEqual(d, date);
    });

    it('keeps BigInts', () => {
      const big = 2n ** 130n;
      assert.deepStrictEqual(roundTrip([0n, -1n, big, -big]), [0n, -1n, big, -big]);
      assert.equal(typeof one(5n), 'bigint');
    });

    it('keeps Maps with any key types in insertion order', () => {
      const objKey = { id: 1 };
      const map = new Map<unknown, unknown>([
        ['z', 1],
        [1, 'one'],
        [objKey, new Date(0)],
        [undefined, null],
        [NaN, 2n],
        [[1, 2], new Map([['inner', new Set([1])]])],
      ]);
      const out = one(map) as Map<unknown, unknown>;
      assert.ok(out instanceof Map);
      assert.deepStrictEqual(out, map);
      assert.deepStrictEqual([...out.keys()], [...map.keys()]);
      assert.equal(out.get(NaN), 2n);
    });

    it('keeps Sets', () => {
      const set = new Set<unknown>(['b', 'a', 3, { x: undefined }, -0]);
      const out = one(set) as Set<unknown>;
      assert.ok(out instanceof Set);
      assert.deepStrictEqual(out, set);
      assert.deepStrictEqual([...out], [...set]);
    });

    it('keeps Buffer as Buffer and Uint8Array as Uint8Array', () => {
      const buf = Buffer.from('héllo, wörld');
      const u8 = new Uint8Array([0, 1, 254, 255]);
      const view = new Uint8Array(new Uint8Array([9, 8, 7, 6, 5]).buffer, 1, 3);
      const [b, u, v, empty] = roundTrip([buf, u8, view, new Uint8Array(0)]);
      assert.ok(Buffer.isBuffer(b));
      assert.deepStrictEqual(b, buf);
      assert.ok(u instanceof Uint8Array && !Buffer.isBuffer(u));
      assert.equal(Object.getPrototypeOf(u), Uint8Array.prototype);
      assert.deepStrictEqual(u, u8);
      assert.deepStrictEqual(v, new Uint8Array([8, 7, 6]));
      assert.deepStrictEqual(empty, new Uint8Array(0));
    });

    it('round-trips a 5 MiB Buffer', () => {
      const big = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      const out = one(big);
      assert.ok(Buffer.isBuffer(out));
      assert.ok(big.equals(out as Buffer));
    });

    it('keeps user keys that look like tags', () => {
      const values = [{ $t: 'date', v: 0 }, { $t: 'undef' }, { $t: 42, nested: { $t: 'map', v: [] }, d: new Date(1) }, { v: 1, n: 'x' }];
      assert.deepStrictEqual(roundTrip(values), values);
    });

    it('keeps __proto__, constructor and prototype keys as plain own data', () => {
      const value = JSON.parse('{"__proto__":{"x":1},"constructor":{"prototype":{"y":2}},"prototype":3,"u":null}') as Record<string, unknown>;
      value.u = undefined; // forces the copying (slow) path as well
      const out = one(value) as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(out), Object.prototype);
      assert.deepStrictEqual(Object.keys(out), ['__proto__', 'constructor', 'prototype', 'u']);
      assert.deepStrictEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { x: 1 });
      assert.deepStrictEqual(out.constructor, { prototype: { y: 2 } });
    });

    it('encodes shared references twice and decodes them as copies', () => {
      const shared = { a: [1] };
      const out = roundTrip([shared, { again: shared }]) as [object, { again: object }];
      assert.deepStrictEqual(out, [shared, { again: shared }]);
      assert.notEqual(out[0], out[1].again);
    });

    it('accepts null-prototype objects and reads getters by value', () => {
      const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: NaN });
      const withGetter = {
        get total() {
          return 3;
        },
        n: 1,
      };
      const [b, g] = roundTrip([bare, withGetter]);
      assert.deepStrictEqual(b, { a: 1, b: NaN });
      assert.deepStrictEqual(g, { total: 3, n: 1 });
    });

    it('encodes plain args as plain JSON without copying', () => {
      assert.equal(Buffer.from(codec.encodeArgs(['Ada', 2])).toString('utf8'), '["Ada",2]');
      const obj = { a: [1, 'x'], b: { c: null } };
      assert.equal(codec.encodeValue(obj), obj);
    });

    it('writes the documented wire format', () => {
      const text = Buffer.from(codec.encodeArgs([undefined, -0, NaN, 1n, new Date(7), new Map([[1, 2]]), new Set(['a']), { $t: 1 }])).toString('utf8');
      assert.equal(
        text,
        '[{"$t":"undef"},{"$t":"num","v":"-0"},{"$t":"num","v":"NaN"},{"$t":"bigint","v":"1"},' +
          '{"$t":"date","v":7},{"$t":"map","v":[[1,2]]},{"$t":"set","v":["a"]},{"$t":"obj","v":{"$t":1}}]',
      );
      assert.equal(
        Buffer.from(codec.encodeArgs([Buffer.from('hi'), new Uint8Array([104, 105])])).toString('utf8'),
        '[{"$t":"buf","v":"aGk="},{"$t":"u8","v":"aGk="}]',
      );
      const tree = codec.encodeValue({ when: new Date(7) });
      assert.deepStrictEqual(tree, { when: { $t: 'date', v: 7 } });
      assert.deepStrictEqual(codec.decodeValue(tree), { when: new Date(7) });
    });

    it('does not modify the input when tagging is needed', () => {
      const input = { a: 1, b: undefined, c: [NaN] };
      codec.encodeValue(input);
      assert.deepStrictEqual(input, { a: 1, b: undefined, c: [NaN] });
    });

    it('handles nesting up to the depth limit', () => {
      const deep = nestedArrays(MAX_DEPTH - 1);
      assert.deepStrictEqual(one(deep), deep); // plus the args array itself = MAX_DEPTH
      unserializable(() => codec.encodeArgs([nestedArrays(MAX_DEPTH)]), /args\[0\](\[0\])+.*….*nested more than 1000/);
    });
  });

  describe('rejections', () => {
    it('rejects a function with its path and what to do', () => {
      unserializable(() => codec.encodeArgs([1, { user: { notify() {} } }]), /^args\[1\]\.user\.notify is a function.*Register it as a task/);
    });

    it('rejects symbols as values and as keys', () => {
      unserializable(() => codec.encodeArgs([{ a: [Symbol('s')] }]), /^args\[0\]\.a\[0\] is a symbol/);
      unserializable(() => codec.encodeArgs([{ ok: 1, [Symbol('k')]: 1 }]), /^args\[0\] has a symbol key Symbol\(k\)/);
    });

    it('rejects cycles but not shared references', () => {
      const loop: Record<string, unknown> = { name: 'loop' };
      loop.self = { again: loop };
      unserializable(() => codec.encodeArgs([loop]), /^args\[0\]\.self\.again is a circular reference/);
      const arr: unknown[] = [];
      arr.push(new Map([['k', arr]]));
      unserializable(() => codec.encodeArgs([arr]), /^args\[0\]\[0\]<map#0 value> is a circular reference/);
    });

    it('rejects class instances without a codec', () => {
      class User {
        name = 'Ada';
      }
      unserializable(
        () => codec.encodeArgs([{ who: new User() }]),
        /^args\[0\]\.who is an instance of User.*register a codec with codec\.register\(\{\.\.\.\}\) or pass plain data/,
      );
      unserializable(() => codec.encodeArgs([new (class Special extends Map {})()]), /instance of Special/);
      unserializable(() => codec.encodeArgs([/re/]), /instance of RegExp/);
    });

    it('rejects WeakMap, WeakSet and Promise', () => {
      unserializable(() => codec.encodeArgs([new WeakMap()]), /^args\[0\] is a WeakMap.*Map, Set or plain data/);
      unserializable(() => codec.encodeArgs([{ s: new WeakSet() }]), /^args\[0\]\.s is a WeakSet/);
      const p = Promise.resolve(1);
      unserializable(() => codec.encodeArgs([[p]]), /^args\[0\]\[0\] is a Promise; await it/);
    });

    it('rejects other typed arrays and buffers', () => {
      unserializable(() => codec.encodeArgs([new Float64Array(2)]), /^args\[0\] is a Float64Array; only Buffer and Uint8Array/);
      unserializable(() => codec.encodeArgs([new ArrayBuffer(2)]), /^args\[0\] is an ArrayBuffer/);
    });

    it('names odd keys and collection members in the path', () => {
      unserializable(() => codec.encodeValue({ 'first name': new Set([1, () => 1]) }), /^value\["first name"\]<set#1> is a function/);
      unserializable(() => codec.encodeValue(new Map([[() => 1, 1]])), /^value<map#0 key> is a function/);
    });

    it('reports a throwing getter as unserializable at its path', () => {
      const obj = {
        get boom(): never {
          throw new Error('nope');
        },
      };
      unserializable(() => codec.encodeArgs([obj]), /^args\[0\]\.boom could not be read: nope/);
    });
  });

  describe('custom types', () => {
    it('round-trips a registered class as that class', () => {
      const c = createCodec({ types: [moneyType] });
      const price = new Money(1999n, 'EUR');
      const [out, inMap] = c.decodeArgs(c.encodeArgs([price, new Map([['p', price]])]));
      assert.ok(out instanceof Money);
      assert.deepStrictEqual(out, price);
      assert.ok((inMap as Map<string, unknown>).get('p') instanceof Money);
    });

    it('register() adds a type later and rejects duplicate names', () => {
      const c = createCodec();
      unserializable(() => c.encodeArgs([new Money(1n, 'USD')]), /^args\[0\] is an instance of Money/);
      c.register(moneyType);
      assert.deepStrictEqual(c.decodeArgs(c.encodeArgs([new Money(1n, 'USD')])), [new Money(1n, 'USD')]);
      rejects(() => c.register({ ...moneyType }), 'INVALID_OPTION', /already registered/);
    });

    it('does not leak registrations between codecs', () => {
      const withMoney = createCodec({ types: [moneyType] });
      unserializable(() => defaultCodec.encodeArgs([new Money(1n, 'USD')]), /instance of Money/);
      const bytes = withMoney.encodeArgs([new Money(1n, 'USD')]);
      invalid(() => createCodec().decodeArgs(bytes), /unknown custom type "Money"/);
    });

    it('rejects custom data that cannot be encoded, with the path', () => {
      const c = createCodec({ types: [{ ...moneyType, encode: () => ({ cb: () => 1 }) }] });
      unserializable(() => c.encodeArgs([new Money(1n, 'X')]), /^args\[0\]<Money>\.cb is a function/);
    });

    it('wraps a failing decode in INVALID_ENVELOPE', () => {
      const c = createCodec({
        types: [
          {
            ...moneyType,
            decode: () => {
              throw new TypeError('bad money');
            },
          },
        ],
      });
      invalid(() => c.decodeArgs(c.encodeArgs([new Money(1n, 'X')])), /Money.*bad money/);
    });
  });

  describe('hostile payloads', () => {
    afterEach(() => {
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
    });

    it('keeps __proto__ / constructor / prototype keys as data without polluting', () => {
      const payload =
        '[{"__proto__":{"polluted":1}},' +
        '{"constructor":{"prototype":{"polluted":2}}},' +
        '{"$t":"obj","v":{"__proto__":{"polluted":3},"$t":"x"}},' +
        '{"$t":"map","v":[["__proto__",{"__proto__":{"polluted":4}}]]},' +
        '[{"__proto__":[]}]]';
      const out = codec.decodeArgs(utf8(payload)) as Record<string, unknown>[];
      for (const obj of out.slice(0, 3)) assert.equal(Object.getPrototypeOf(obj), Object.prototype);
      assert.ok(Object.hasOwn(out[0], '__proto__'));
      assert.deepStrictEqual(Object.getOwnPropertyDescriptor(out[0], '__proto__')?.value, { polluted: 1 });
      assert.equal(out[0].polluted, undefined);
      assert.deepStrictEqual(out[1].constructor, { prototype: { polluted: 2 } });
      assert.equal(out[2].$t, 'x');
      assert.equal(out[2].polluted, undefined);
      const inner = (out[3] as unknown as Map<string, Record<string, unknown>>).get('__proto__')!;
      assert.equal(Object.getPrototypeOf(inner), Object.prototype);
      assert.equal(inner.polluted, undefined);
      assert.ok(!Array.isArray((out[4] as unknown as unknown[])[0]));
    });

    it('does not pollute through a hostile envelope', () => {
      const env = decodeEnvelope(
        utf8(
          '{"v":1,"task":"t","id":"i","__proto__":{"polluted":1},' + '"args":[{"__proto__":{"polluted":1},"a":{"constructor":{"prototype":{"polluted":1}}}}]}',
        ),
      );
      assert.equal(Object.getPrototypeOf(env), Object.prototype);
      assert.equal((env as unknown as Record<string, unknown>).polluted, undefined);
      const [arg] = codec.decodeArgsTree(env.argsTree) as [Record<string, unknown>];
      assert.equal(Object.getPrototypeOf(arg), Object.prototype);
      assert.equal(arg.polluted, undefined);
      assert.deepStrictEqual(Object.keys(arg), ['__proto__', 'a']);
    });

    it('rejects unknown and malformed tags', () => {
      for (const bad of [
        '[{"$t":"eval","v":"process.exit(1)"}]',
        '[{"$t":"custom","n":"constructor","v":1}]',
        '[{"$t":"custom","n":"__proto__","v":1}]',
        '[{"$t":"undef","v":1}]',
        '[{"$t":null}]',
        '[{"$t":"num","v":"1e3"}]',
        '[{"$t":"bigint","v":"12abc"}]',
        '[{"$t":"bigint","v":"0x10"}]',
        '[{"$t":"bigint","v":12}]',
        '[{"$t":"buf","v":"not base64!"}]',
        '[{"$t":"u8","v":"QUJD="}]',
        '[{"$t":"date","v":"2020-01-01"}]',
        '[{"$t":"date","v":1e20}]',
        '[{"$t":"map","v":{}}]',
        '[{"$t":"map","v":[[1]]}]',
        '[{"$t":"set","v":"abc"}]',
        '[{"$t":"obj","v":[1]}]',
        '[{"$t":"obj","v":null}]',
      ]) {
        invalid(() => codec.decodeArgs(utf8(bad)));
      }
    });

    it('rejects bytes that are not a JSON args array', () => {
      for (const bad of ['', 'nope', '{"a":1}', '"str"', 'null', '[1,]']) invalid(() => codec.decodeArgs(utf8(bad)));
      invalid(() => codec.decodeArgs(new Uint8Array([0x5b, 0xff, 0x5d])), /UTF-8/);
      invalid(() => codec.decodeArgs('[]' as unknown as Uint8Array));
    });

    it('rejects trees that are not JSON', () => {
      for (const bad of [[undefined], [NaN], [new Date()], [() => 1], [1n], [Symbol('x')]]) invalid(() => codec.decodeValue(bad));
    });

    it('rejects nesting deeper than the limit instead of overflowing the stack', () => {
      const depth = 100_000;
      invalid(() => codec.decodeArgs(utf8('['.repeat(depth) + ']'.repeat(depth))), /nested more than 1000/);
      invalid(() => codec.decodeArgs(utf8('['.concat('{"a":'.repeat(depth), '1', '}'.repeat(depth), ']'))), /nested/);
      const tagged = '{"$t":"set","v":['.repeat(depth) + ']}'.repeat(depth);
      invalid(() => codec.decodeArgs(utf8(`[${tagged}]`)), /nested/);
    });
  });

  describe('envelope', () => {
    it('carries inline args as one JSON document', () => {
      const args = codec.encodeArgs(['Ada', new Date(5), undefined]);
      const bytes = encodeEnvelope({ task: 'sendMail', id: 't-1', args, meta: { attempt: 1, urgent: true, by: 'x' } });
      const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
      assert.equal(json.v, ENVELOPE_VERSION);
      assert.ok(Array.isArray(json.args));

      const env = decodeEnvelope(bytes);
      assert.deepStrictEqual(
        { ...env, argsTree: undefined },
        { v: 1, task: 'sendMail', id: 't-1', meta: { attempt: 1, urgent: true, by: 'x' }, argsTree: undefined },
      );
      assert.equal(env.payloadRef, undefined);
      assert.deepStrictEqual(codec.decodeArgsTree(env.argsTree), ['Ada', new Date(5), undefined]);
      assert.deepStrictEqual(codec.decodeValue(env.argsTree), ['Ada', new Date(5), undefined]);
    });

    it('carries a payload reference instead of args', () => {
      const env = decodeEnvelope(encodeEnvelope({ task: 'big', id: 'id-2', payloadRef: 'payload/abc' }));
      assert.deepStrictEqual(env, { v: 1, task: 'big', id: 'id-2', payloadRef: 'payload/abc' });
      assert.equal(env.argsTree, undefined);
    });

    it('rejects invalid input when encoding', () => {
      const args = codec.encodeArgs([1]);
      invalid(() => encodeEnvelope({ task: '', id: 'x', args }), /task/);
      invalid(() => encodeEnvelope({ task: 't', id: 'x', args, payloadRef: 'p' }), /both/);
      invalid(() => encodeEnvelope({ task: 't', id: 'x', args: utf8('[1],"task":"evil"') }), /JSON/);
      invalid(() => encodeEnvelope({ task: 't', id: 'x', args: utf8('{"a":1}') }), /array/);
      invalid(() => encodeEnvelope({ task: 't', id: 'x', meta: { n: NaN } }), /meta/);
    });

    it('rejects malformed envelopes with INVALID_ENVELOPE only', () => {
      const cases: [string, RegExp][] = [
        ['not json', /JSON/],
        ['[]', /object/],
        ['null', /object/],
        ['{"task":"t","id":"i"}', /version undefined/],
        ['{"v":2,"task":"t","id":"i"}', /version 2/],
        ['{"v":"1","task":"t","id":"i"}', /version "1"/],
        ['{"v":1,"task":5,"id":"i"}', /task/],
        ['{"v":1,"task":"t"}', /id/],
        ['{"v":1,"task":"t","id":"i","payloadRef":7}', /payloadRef/],
        ['{"v":1,"task":"t","id":"i","args":{"0":1}}', /args/],
        ['{"v":1,"task":"t","id":"i","args":[],"payloadRef":"p"}', /both/],
        ['{"v":1,"task":"t","id":"i","meta":[1]}', /meta/],
        ['{"v":1,"task":"t","id":"i","meta":{"a":{}}}', /meta/],
      ];
      for (const [text, pattern] of cases) invalid(() => decodeEnvelope(utf8(text)), pattern);
    });

    it('reads the header without decoding args, so bad args fail only at decode', () => {
      const env = decodeEnvelope(utf8('{"v":1,"task":"t","id":"i","args":[{"$t":"custom","n":"Nope","v":1}],"extra":true}'));
      assert.equal(env.task, 't');
      invalid(() => codec.decodeArgsTree(env.argsTree), /unknown custom type "Nope"/);
      invalid(() => codec.decodeArgsTree({}), /array/);
    });

    it('does not pollute through meta', () => {
      const env = decodeEnvelope(utf8('{"v":1,"task":"t","id":"i","meta":{"__proto__":"x","constructor":"y"}}'));
      assert.equal(Object.getPrototypeOf(env.meta), Object.prototype);
      assert.equal(Object.getOwnPropertyDescriptor(env.meta, '__proto__')?.value, 'x');
      assert.equal(({} as Record<string, unknown>).constructor, Object);
    });
  });
});
