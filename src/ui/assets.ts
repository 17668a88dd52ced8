// The page: a small HTML shell and one script bundled with esbuild from src/ui/web (uPlot and the CSS inside). In a
// source checkout the bundle is made from the sources when the server starts (the dashboard always matches the
// code, as the CLI does through tsx); an installed package serves dist/ui/web/app.js, written at build time by
// scripts/build-ui.mjs (run by `npm install` through the prepare script).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SftkitError } from '../errors.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** The front end's entry in a source checkout. */
export const WEB_ENTRY = join(here, 'web', 'main.ts');
/** The bundle an installed package serves (next to the compiled server). */
export const BUILT_BUNDLE = join(here, 'web', 'app.js');

export interface WebAssets {
  html: string;
  js: string;
  /** Where the script came from. */
  source: 'sources' | 'bundle';
}

/** Bundles the front end into one minified IIFE script (CSS imported as text). */
export async function bundleWebApp(entry: string = WEB_ENTRY): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    legalComments: 'eof',
    loader: { '.css': 'text' },
    logLevel: 'silent',
    banner: { js: '/* sftkit dashboard (Apache-2.0); includes uPlot (MIT, (c) Leon Sorokin) */' },
  });
  const out = result.outputFiles[0];
  if (!out) throw new SftkitError('SFTKIT_IO', `esbuild produced no output for ${entry}`);
  return out.text;
}

/** Writes the bundle to `file` (the build step). */
export async function writeWebBundle(file: string, entry: string = WEB_ENTRY): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, await bundleWebApp(entry));
}

export function indexHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sftkit</title>
<link rel="icon" href="data:,">
<script src="/app.js" defer></script>
</head>
<body>
<noscript>The sftkit dashboard needs JavaScript.</noscript>
</body>
</html>
`;
}

export async function loadWebAssets(): Promise<WebAssets> {
  if (existsSync(WEB_ENTRY)) return { html: indexHtml(), js: await bundleWebApp(WEB_ENTRY), source: 'sources' };
  if (!existsSync(BUILT_BUNDLE)) {
    throw new SftkitError('SFTKIT_IO', `the dashboard bundle ${BUILT_BUNDLE} is missing; build it with \`npm run build:ui\``);
  }
  return { html: indexHtml(), js: await readFile(BUILT_BUNDLE, 'utf8'), source: 'bundle' };
}
