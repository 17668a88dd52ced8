#!/usr/bin/env node
// prebuildify only speaks node-gyp: it runs `$PREBUILD_NODE_GYP rebuild --target=... --release ...` and then
// takes the .node file from build/Release. This shim answers that call by building with cmake-js instead.
import { buildNative } from './build-native.mjs';

const args = process.argv.slice(2);
if (args[0] !== 'rebuild' && args[0] !== 'build') {
  console.error(`node-gyp-shim: unsupported command ${args[0] ?? '(none)'}; only rebuild/build are used by prebuildify`);
  process.exit(1);
}
try {
  await buildNative({ debug: args.includes('--debug') });
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
