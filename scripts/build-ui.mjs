// Bundles the dashboard's front end (src/ui/web, uPlot included) into dist/ui/web/app.js with esbuild, through the
// compiled dist/ui/assets.js (so the bundle options live in one place). Run by `npm run build:ts` and `prepare`,
// after tsc; an installed package serves this file, a source checkout bundles from the sources at start.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './libtorch.mjs';

const assets = join(PACKAGE_ROOT, 'dist', 'ui', 'assets.js');
if (!existsSync(assets)) {
  console.error(`build-ui: ${assets} is missing; compile the TypeScript first (tsc -p tsconfig.build.json)`);
  process.exit(1);
}
const { writeWebBundle } = await import(assets);
const out = join(PACKAGE_ROOT, 'dist', 'ui', 'web', 'app.js');
const t0 = Date.now();
await writeWebBundle(out, join(PACKAGE_ROOT, 'src', 'ui', 'web', 'main.ts'));
console.log(`build-ui: ${out} (${Date.now() - t0} ms)`);
