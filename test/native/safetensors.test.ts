// safetensors reader/writer of the addon: round trips of every dtype, files written by Python `safetensors`,
// the real TinyStories-656K checkpoint, sharded directories, strict validation and a seeded fuzz over headers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  loadSafetensors,
  loadSafetensorsDir,
  saveSafetensors,
  safetensorsInfo,
  type LoadedTensor,
  type SafetensorsDtype,
  type TensorToSave,
} from '../../src/native/safetensors.ts';
import { assemble, baseFile, mutate, pad8, runCase } from './helpers/safetensors-fuzz.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'sftkit-safetensors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function code(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), wantCode: string, pattern: RegExp): Promise<void> {
  const run = typeof p === 'function' ? async () => p() : () => p;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(code(e), wantCode, (e as Error).message);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

/** Values exactly representable in every float dtype (incl. bf16/f16). */
const FLOATS = [-1.5, -0.25, 0, 0.5, 3, 96];

describe('round trip through the addon', () => {
  const cases: Array<{ dtype: SafetensorsDtype; data: TensorToSave['data']; expect: ArrayLike<number | bigint> }> = [
    { dtype: 'F64', data: new Float64Array(FLOATS), expect: FLOATS },
    { dtype: 'F32', data: new Float32Array(FLOATS), expect: FLOATS },
    { dtype: 'F16', data: new Float32Array(FLOATS), expect: FLOATS },
    { dtype: 'BF16', data: new Float32Array(FLOATS), expect: FLOATS },
    { dtype: 'I64', data: new BigInt64Array([-(2n ** 62n), -3n, 0n, 1n, 2n ** 40n, 2n ** 62n]), expect: [-(2n ** 62n), -3n, 0n, 1n, 2n ** 40n, 2n ** 62n] },
    { dtype: 'I32', data: new Int32Array([-(2 ** 31), -3, 0, 1, 70000, 2 ** 31 - 1]), expect: [-(2 ** 31), -3, 0, 1, 70000, 2 ** 31 - 1] },
    { dtype: 'I16', data: new Int16Array([-32768, -3, 0, 1, 1000, 32767]), expect: [-32768, -3, 0, 1, 1000, 32767] },
    { dtype: 'I8', data: new Int8Array([-128, -3, 0, 1, 100, 127]), expect: [-128, -3, 0, 1, 100, 127] },
    { dtype: 'U8', data: new Uint8Array([0, 1, 2, 128, 200, 255]), expect: [0, 1, 2, 128, 200, 255] },
    { dtype: 'BOOL', data: new Uint8Array([1, 0, 1, 1, 0, 0]), expect: [1, 0, 1, 1, 0, 0] },
  ];

  test('every dtype, one file, names and order kept, HF layout', async () => {
    const file = join(tmp, 'all.safetensors');
    const tensors: TensorToSave[] = cases.map((c) => ({ name: `t.${c.dtype}`, data: c.data, shape: [2, 3], dtype: c.dtype }));
    tensors.push({ name: 'scalar', data: new Float32Array([2.5]), shape: [] });
    tensors.push({ name: 'empty', data: new Float32Array(0), shape: [0, 3] });
    await saveSafetensors(file, tensors, { format: 'pt', 'model.embed_tokens.weight': 'lm_head.weight' });

    // Layout: u64 LE header length, header padded with spaces to 8 bytes, tensors in the given order.
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const headerText = bytes.subarray(8, 8 + n).toString('utf8');
    assert.match(headerText, /^\{"__metadata__":/);
    assert.match(headerText, /\} *$/);
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    assert.deepEqual(Object.keys(header), ['__metadata__', ...tensors.map((t) => t.name)]);
    assert.equal(bytes.length, 8 + n + header.empty!.data_offsets[1]);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), [], 'no temporary file left behind');

    const info = safetensorsInfo(file);
    assert.deepEqual(info.metadata, { format: 'pt', 'model.embed_tokens.weight': 'lm_head.weight' });
    assert.deepEqual(info.tensors.map((t) => t.name), tensors.map((t) => t.name));
    assert.deepEqual(info.tensors.map((t) => t.dtype), [...cases.map((c) => c.dtype), 'F32', 'F32']);

    const loaded = await loadSafetensors(file);
    for (const c of cases) {
      const t = loaded[`t.${c.dtype}`]!;
      assert.equal(t.dtype, c.dtype);
      assert.deepEqual(t.shape, [2, 3]);
      assert.deepEqual(Array.from(t.data as ArrayLike<number | bigint>), Array.from(c.expect), c.dtype);
      const ctor = { F64: Float64Array, F32: Float32Array, F16: Float32Array, BF16: Float32Array, I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array }[c.dtype];
      assert.ok(t.data instanceof ctor, `${c.dtype} comes back as ${ctor.name}`);
    }
    assert.deepEqual(loaded.scalar!.shape, []);
    assert.deepEqual(Array.from(loaded.scalar!.data as Float32Array), [2.5]);
    assert.deepEqual(loaded.empty!.shape, [0, 3]);
    assert.equal(loaded.empty!.data.length, 0);
  });

  test('F16/BF16 round to nearest on write; a Float64Array can be stored as F32', async () => {
    const file = join(tmp, 'rounding.safetensors');
    const x = new Float32Array([1 / 3, 65504, 1e-8, -2.71828]);
    await saveSafetensors(file, [
      { name: 'h', data: x, shape: [4], dtype: 'F16' },
      { name: 'b', data: x, shape: [4], dtype: 'BF16' },
      { name: 'f', data: new Float64Array([0.1, 0.2]), shape: [2], dtype: 'F32' },
    ]);
    const t = await loadSafetensors(file);
    const h = t.h!.data as Float32Array;
    const b = t.b!.data as Float32Array;
    for (let i = 0; i < x.length; i++) {
      assert.ok(Math.abs(h[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -11 + 6e-8, `f16 ${x[i]} -> ${h[i]}`);
      assert.ok(Math.abs(b[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -8, `bf16 ${x[i]} -> ${b[i]}`);
    }
    assert.deepEqual(Array.from(t.f!.data as Float32Array), Array.from(new Float32Array([0.1, 0.2])));
  });

  test('overwrites an existing file atomically and keeps a tensor named __proto__ as data', async () => {
    const file = join(tmp, 'overwrite.safetensors');
    await saveSafetensors(file, [{ name: 'x', data: new Float32Array([1]), shape: [1] }]);
    await saveSafetensors(file, [{ name: '__proto__', data: new Int32Array([7, 8]), shape: [2] }]);
    const t = await loadSafetensors(file);
    assert.deepEqual(Object.keys(t), ['__proto__']);
    assert.deepEqual(Array.from(t['__proto__']!.data as Int32Array), [7, 8]);
    assert.equal(Object.getPrototypeOf(t), Object.prototype);
  });

  test('argument validation happens before the native call', async () => {
    const f = join(tmp, 'never.safetensors');
    const bad: Array<[unknown, RegExp]> = [
      [[{ name: '', data: new Float32Array(1), shape: [1] }], /tensors\[0\]\.name/],
      [[{ name: '__metadata__', data: new Float32Array(1), shape: [1] }], /tensors\[0\]\.name/],
      [[{ name: 'a', data: new Float32Array(1), shape: [1] }, { name: 'a', data: new Float32Array(1), shape: [1] }], /tensors\[1\]\.name/],
      [[{ name: 'a', data: [1, 2], shape: [2] }], /tensors\[0\]\.data/],
      [[{ name: 'a', data: new Float32Array(6), shape: [2, 2] }], /tensors\[0\]\.shape/],
      [[{ name: 'a', data: new Float32Array(2), shape: [-1, -2] }], /tensors\[0\]\.shape/],
      [[{ name: 'a', data: new Int32Array(2), shape: [2], dtype: 'F16' }], /tensors\[0\]\.dtype/],
      [[{ name: 'a', data: new Float32Array(2), shape: [2], dtype: 'Q8' }], /tensors\[0\]\.dtype/],
      ['nope', /tensors/],
    ];
    for (const [tensors, pattern] of bad) {
      assert.throws(() => saveSafetensors(f, tensors as TensorToSave[]), (e: unknown) => code(e) === 'SFTKIT_BAD_ARGUMENT' && pattern.test((e as Error).message));
    }
    assert.throws(() => saveSafetensors(f, [], { a: 1 } as unknown as Record<string, string>), /metadata\["a"\]/);
    assert.throws(() => saveSafetensors('', []), /path/);
    assert.throws(() => loadSafetensors(f, { threads: 0 }), /options\.threads/);
    assert.throws(() => safetensorsInfo(42 as unknown as string), (e: unknown) => code(e) === 'SFTKIT_BAD_ARGUMENT');
  });

  test('a write into a missing directory is SFTKIT_IO and leaves nothing behind', async () => {
    await rejectsWith(saveSafetensors(join(tmp, 'no', 'such', 'dir', 'x.safetensors'), [{ name: 'x', data: new Float32Array(1), shape: [1] }]), 'SFTKIT_IO', /cannot create/);
  });
});

describe('files written by Python safetensors', () => {
  const expected = JSON.parse(readFileSync(join(fixtures, 'safetensors', 'expected.json'), 'utf8')) as {
    allDtypes: { file: string; metadata: Record<string, string>; tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; values: Array<number | string> }> };
    sharded: { dir: string; metadata: Record<string, string>; tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; values: number[] }> };
  };

  function checkValues(name: string, t: LoadedTensor | undefined, want: { dtype: SafetensorsDtype; shape: number[]; values: Array<number | string> }): void {
    assert.ok(t, `${name} present`);
    assert.equal(t.dtype, want.dtype, name);
    assert.deepEqual(t.shape, want.shape, name);
    const got = Array.from(t.data as ArrayLike<number | bigint>);
    const exp = want.dtype === 'I64' ? want.values.map((v) => BigInt(v)) : want.values;
    assert.deepEqual(got, exp, name);
  }

  test('every dtype, a scalar and an empty tensor', async () => {
    const file = join(fixtures, 'safetensors', expected.allDtypes.file);
    const info = safetensorsInfo(file);
    assert.deepEqual(info.metadata, expected.allDtypes.metadata);
    assert.deepEqual(new Set(info.tensors.map((t) => t.name)), new Set(Object.keys(expected.allDtypes.tensors)));
    const loaded = await loadSafetensors(file);
    for (const [name, want] of Object.entries(expected.allDtypes.tensors)) checkValues(name, loaded[name], want);
  });

  test('sharded directory (index.json + 2 shards)', async () => {
    const dir = join(fixtures, 'safetensors', expected.sharded.dir);
    const { tensors, metadata } = await loadSafetensorsDir(dir);
    assert.deepEqual(metadata, expected.sharded.metadata);
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected.sharded.tensors).sort());
    for (const [name, want] of Object.entries(expected.sharded.tensors)) checkValues(name, tensors[name], want);
  });

  test('sharded directory errors: missing shard, tensor not in its shard, escaping path, duplicate across shards', async () => {
    const src = join(fixtures, 'safetensors', expected.sharded.dir);
    const make = (name: string, index: unknown, extraShard?: [string, string]): string => {
      const dir = join(tmp, name);
      mkdirSync(dir, { recursive: true });
      for (const f of readdirSync(src)) if (f.endsWith('.safetensors')) copyFileSync(join(src, f), join(dir, f));
      if (extraShard) copyFileSync(join(src, extraShard[0]), join(dir, extraShard[1]));
      writeFileSync(join(dir, 'model.safetensors.index.json'), typeof index === 'string' ? index : JSON.stringify(index));
      return dir;
    };
    const s1 = 'model-00001-of-00002.safetensors';
    const s2 = 'model-00002-of-00002.safetensors';
    await rejectsWith(loadSafetensorsDir(make('missing', { weight_map: { 'model.a.weight': 'model-00009.safetensors' } })), 'SFTKIT_IO', /model-00009\.safetensors: cannot open/);
    await rejectsWith(loadSafetensorsDir(make('notin', { weight_map: { 'model.a.weight': s2 } })), 'SFTKIT_IO', /mapped to .* does not contain it/);
    await rejectsWith(loadSafetensorsDir(make('escape', { weight_map: { 'model.a.weight': `../${s1}` } })), 'SFTKIT_IO', /not a file in the directory/);
    await rejectsWith(loadSafetensorsDir(make('dup', { weight_map: { 'model.a.weight': s1, 'model.b.bias': 'copy.safetensors' } }, [s1, 'copy.safetensors'])), 'SFTKIT_IO', /more than one shard/);
    await rejectsWith(loadSafetensorsDir(make('badjson', '{"weight_map": ')), 'SFTKIT_IO', /not valid JSON/);
    await rejectsWith(loadSafetensorsDir(make('nomap', { metadata: {} })), 'SFTKIT_IO', /weight_map/);
    await rejectsWith(loadSafetensorsDir(join(tmp, 'nowhere')), 'SFTKIT_IO', /does not exist/);
    mkdirSync(join(tmp, 'emptydir'));
    await rejectsWith(loadSafetensorsDir(join(tmp, 'emptydir')), 'SFTKIT_IO', /neither model\.safetensors nor/);
  });
});

describe('TinyStories-656K (real checkpoint)', () => {
  const dir = join(fixtures, 'models', 'tinystories-656k');

  test('header: tied embedding stored once as lm_head.weight, alias in __metadata__', () => {
    const info = safetensorsInfo(join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size: number; hidden_size: number; num_hidden_layers: number };
    assert.equal(info.metadata['model.embed_tokens.weight'], 'lm_head.weight');
    const names = info.tensors.map((t) => t.name);
    assert.ok(names.includes('lm_head.weight'));
    assert.ok(!names.includes('model.embed_tokens.weight'));
    assert.equal(names.length, 2 + 9 * config.num_hidden_layers);
    assert.deepEqual(info.tensors.find((t) => t.name === 'lm_head.weight')!.shape, [config.vocab_size, config.hidden_size]);
    assert.ok(info.tensors.every((t) => t.dtype === 'F32'));
  });

  test('load: every tensor equals the bytes at its offsets (file and directory loaders)', async () => {
    const file = join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const info = safetensorsInfo(file);
    const single = await loadSafetensors(file);
    const { tensors, metadata } = await loadSafetensorsDir(dir);
    assert.equal(metadata['model.embed_tokens.weight'], 'lm_head.weight');
    for (const t of info.tensors) {
      const stored = bytes.subarray(8 + n + t.offsets[0], 8 + n + t.offsets[1]);
      for (const loaded of [single[t.name]!, tensors[t.name]!]) {
        assert.deepEqual(loaded.shape, t.shape);
        assert.ok(Buffer.from(loaded.data.buffer, loaded.data.byteOffset, loaded.data.byteLength).equals(stored), t.name);
      }
    }
  });

  test('save -> load keeps every tensor bit-exact', async () => {
    const loaded = await loadSafetensors(join(dir, 'model.safetensors'));
    const info = safetensorsInfo(join(dir, 'model.safetensors'));
    const out = join(tmp, 'tinystories-copy.safetensors');
    await saveSafetensors(out, Object.entries(loaded).map(([name, t]) => ({ name, data: t.data, shape: t.shape })), info.metadata);
    const again = await loadSafetensors(out);
    for (const [name, t] of Object.entries(loaded)) {
      assert.deepEqual(again[name]!.data, t.data, name);
    }
    assert.deepEqual(safetensorsInfo(out).metadata, info.metadata);
  });
});

describe('strict validation (each defect is SFTKIT_IO naming the file and the problem)', () => {
  const { header, data } = baseFile();
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['shorter than 8 bytes', () => Buffer.from([1, 2, 3]), /shorter than the 8-byte header length/],
    ['header length past the end', () => assemble(pad8(JSON.stringify(header)), data, 100000n), /runs past the end of the file/],
    ['absurd header length', () => assemble(pad8(JSON.stringify(header)), data, 2n ** 63n), /absurdly large/],
    ['not JSON', () => assemble('{"a": tru}      ', data), /not valid JSON/],
    ['not an object', () => assemble('[1,2,3] ', data), /not a JSON object/],
    ['missing dtype', () => assemble(pad8(JSON.stringify({ ...header, a: { shape: [2, 3], data_offsets: [0, 24] } })), data), /"a": missing "dtype"/],
    ['missing shape', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F32', data_offsets: [0, 24] } })), data), /missing "shape"/],
    ['missing data_offsets', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F32', shape: [2, 3] } })), data), /missing "data_offsets"/],
    ['unknown dtype', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F33', shape: [2, 3], data_offsets: [0, 24] } })), data), /unknown dtype "F33"/],
    ['negative shape', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F32', shape: [-2, -3], data_offsets: [0, 24] } })), data), /not a non-negative integer/],
    ['non-integer shape', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F32', shape: [2.5, 3], data_offsets: [0, 24] } })), data), /not a non-negative integer/],
    ['shape x size != bytes', () => assemble(pad8(JSON.stringify({ ...header, a: { dtype: 'F32', shape: [3, 3], data_offsets: [0, 24] } })), data), /does not match the 24 bytes/],
    ['offsets out of range', () => assemble(pad8(JSON.stringify({ ...header, d: { dtype: 'U8', shape: [2], data_offsets: [46, 50] } })), data), /out of range/],
    ['begin > end', () => assemble(pad8(JSON.stringify({ ...header, d: { dtype: 'U8', shape: [2], data_offsets: [48, 46] } })), data), /begin > end/],
    ['overlap', () => assemble(pad8(JSON.stringify({ ...header, d: { dtype: 'U8', shape: [2], data_offsets: [44, 46] } })), data), /overlaps/],
    ['hole', () => assemble(pad8(JSON.stringify({ ...header, c: { dtype: 'BF16', shape: [2], data_offsets: [40, 44] } })), data), /hole at bytes 44\.\.46/],
    ['trailing bytes', () => assemble(pad8(JSON.stringify(header)), Buffer.concat([data, Buffer.alloc(8)])), /cover 48 bytes but the data region has 56/],
    ['duplicate names', () => assemble(pad8(JSON.stringify(header).slice(0, -1) + ',"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), data), /duplicate key "a"/],
    ['deep nesting', () => assemble('[' .repeat(1e6) + ']'.repeat(1e6), data), /nested deeper than 8/],
    ['non-UTF-8 name', () => assemble(Buffer.concat([Buffer.from('{"\xff'.slice(0, 2)), Buffer.from([0xff]), Buffer.from('":1}   ')]), data), /invalid UTF-8/],
    ['metadata not strings', () => assemble(pad8(JSON.stringify({ ...header, __metadata__: { n: 1 } })), data), /__metadata__\["n"\] is a number/],
  ];
  for (const [name, build, pattern] of cases) {
    test(name, () => {
      const file = join(tmp, `strict-${name.replace(/\W+/g, '-')}.safetensors`);
      writeFileSync(file, build());
      assert.throws(() => safetensorsInfo(file), (e: unknown) => {
        assert.equal(code(e), 'SFTKIT_IO', (e as Error).message);
        assert.ok((e as Error).message.startsWith(`safetensors file ${file}: `), (e as Error).message);
        assert.match((e as Error).message, pattern);
        return true;
      });
    });
  }

  test('a spec dtype sftkit does not handle is SFTKIT_UNSUPPORTED', () => {
    const file = join(tmp, 'f8.safetensors');
    writeFileSync(file, assemble(pad8(JSON.stringify({ ...header, d: { dtype: 'F8_E4M3', shape: [2], data_offsets: [46, 48] } })), data));
    assert.throws(() => safetensorsInfo(file), (e: unknown) => code(e) === 'SFTKIT_UNSUPPORTED' && /F8_E4M3 is not supported/.test((e as Error).message));
  });

  test('unaligned data is copied (header not padded to 8): values still right', async () => {
    let h = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F64', shape: [1], data_offsets: [8, 16] } });
    while ((8 + h.length) % 4 !== 1) h += ' ';
    assert.notEqual((8 + h.length) % 4, 0);
    const d = Buffer.alloc(16);
    d.writeFloatLE(1.25, 0);
    d.writeFloatLE(-3, 4);
    d.writeDoubleLE(Math.PI, 8);
    const file = join(tmp, 'unaligned.safetensors');
    writeFileSync(file, assemble(h, d));
    const t = await loadSafetensors(file);
    assert.deepEqual(Array.from(t.a!.data as Float32Array), [1.25, -3]);
    assert.deepEqual(Array.from(t.b!.data as Float64Array), [Math.PI]);
  });
});

describe('fuzz: seeded mutations of a valid file never crash', () => {
  const CASES = 400;

  test(`${CASES} mutated files load correctly or throw SFTKIT_IO (in process)`, async () => {
    let ok = 0;
    let errors = 0;
    const labels = new Set<string>();
    for (let seed = 1; seed <= CASES; seed++) {
      const { bytes, label } = mutate(seed);
      labels.add(label.split(' ')[0]!);
      try {
        if ((await runCase(join(tmp, `fuzz-${seed}.safetensors`), bytes)) === 'ok') ok++;
        else errors++;
      } catch (e) {
        throw new Error(`seed ${seed} (${label}): ${(e as Error).message}`, { cause: e });
      }
    }
    assert.equal(ok + errors, CASES);
    assert.ok(errors > CASES / 2, `most mutations are rejected (${errors})`);
    assert.ok(ok > 0, 'some mutations stay valid (e.g. a same-size dtype)');
  });

  test('a batch of 200 further cases in a child process exits 0', () => {
    const child = join(here, 'helpers', 'safetensors-fuzz-child.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, '1000', '200', tmp], { encoding: 'utf8' });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const { ok, errors } = JSON.parse(r.stdout.trim()) as { ok: number; errors: number };
    assert.equal(ok + errors, 200);
  });
});
