// `npm install` hook: obtain libtorch (see libtorch.mjs), record it, then build the addon unless a
// prebuild for this platform loads. SFTKIT_SKIP_NATIVE_BUILD=1 stops after provisioning.
import { buildNative } from './build-native.mjs';
import { LibtorchError, resolveLibtorch, writeRecord } from './libtorch.mjs';
import { prebuildLoads } from './prebuild-check.mjs';

async function main() {
  let record;
  try {
    record = await resolveLibtorch();
  } catch (e) {
    if (e instanceof LibtorchError) {
      console.error(`\n${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  writeRecord(record);
  console.error(`sftkit: libtorch ${record.version} (${record.variant}) from ${record.source}: ${record.path}`);
  if (process.env.SFTKIT_SKIP_NATIVE_BUILD === '1') return;
  if (process.env.SFTKIT_FORCE_BUILD !== '1' && prebuildLoads()) {
    console.error('sftkit: using the prebuilt addon in prebuilds/');
    return;
  }
  await buildNative();
}

await main();
