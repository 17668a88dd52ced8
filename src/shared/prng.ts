// A small seeded PRNG (xoshiro128** seeded by splitmix32): reproducible shuffles with a serialisable state.

import { invalidParameterError } from '../errors.ts';

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128**: 128-bit state, 32-bit outputs. `state()` / `Rng.fromState()` round-trip exactly (resume). */
export class Rng {
  private readonly s: Uint32Array;
  private constructor(s: Uint32Array) {
    this.s = s;
  }

  /** A generator from a non-negative integer seed (any safe integer; the high bits are mixed in). */
  static fromSeed(seed: number): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalidParameterError('seed', 'a non-negative integer', seed);
    const hi = Math.floor(seed / 2 ** 32);
    const sm = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2f));
    const s = new Uint32Array([sm(), sm(), sm(), sm()]);
    if (s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 0) s[0] = 1;
    return new Rng(s);
  }

  static fromState(state: readonly number[]): Rng {
    if (!Array.isArray(state) || state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw invalidParameterError('rng state', 'four unsigned 32-bit integers', state);
    }
    return new Rng(Uint32Array.from(state));
  }

  state(): number[] {
    return Array.from(this.s);
  }

  nextU32(): number {
    const s = this.s;
    const s0 = s[0]!;
    const s1 = s[1]!;
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s[2]! ^= s0;
    s[3]! ^= s1;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw invalidParameterError('n', 'an integer in [1, 2^32]', n);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Fisher-Yates in place. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** A random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): number[] {
  return shuffleInPlace(Array.from({ length: n }, (_, i) => i), rng);
}

/** A seed for an independent stream (e.g. one per epoch) derived from a base seed. */
export function deriveSeed(seed: number, ...streams: number[]): number {
  let h = splitmix32(seed >>> 0)() ^ Math.imul(Math.floor(seed / 2 ** 32), 0x9e3779b1);
  for (const s of streams) h = splitmix32((h ^ Math.imul(s >>> 0, 0x85ebca6b)) >>> 0)();
  return h >>> 0;
}
