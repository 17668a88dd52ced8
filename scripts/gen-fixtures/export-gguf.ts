// Exports the GGUF check's models (test/e2e/helpers/export-cases.ts) in every type and runs check_gguf.py (gguf-py)
// on them, writing test/fixtures/gguf/gguf-py-report.json, which test/e2e/export-gguf.test.ts compares sftkit's
// exports against. Usage: node --import tsx scripts/gen-fixtures/export-gguf.ts [PYTHON]
// (PYTHON: an interpreter with gguf, numpy and safetensors; default python3).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportGguf } from '../../src/export/index.ts';
import { ARCHITECTURE_EXPORT_NAME, EXPORT_TYPES, prepareArchitectureCases, prepareExportCases, type ExportCase } from '../../test/e2e/helpers/export-cases.ts';

const root = join(import.meta.dirname, '..', '..');
const python = process.argv[2] ?? 'python3';
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-gguf-fixtures-'));
try {
  // issue 22's fixtures (test/e2e/export-gguf-architectures.test.ts) under their own general.name
  const cases: Array<ExportCase & { exportName?: string }> = [...(await prepareExportCases(scratch)), ...prepareArchitectureCases(join(scratch, 'arch')).map((c) => ({ ...c, name: `arch-${c.name}`, exportName: ARCHITECTURE_EXPORT_NAME }))];
  const manifest = [];
  for (const c of cases) {
    for (const type of EXPORT_TYPES) {
      const file = join(scratch, `${c.name}-${type}.gguf`);
      await exportGguf(c.dir, file, { type, ...(c.exportName !== undefined ? { name: c.exportName } : {}) });
      const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
      manifest.push({ name: `${c.name}-${type}`, file, model_dir: c.dir, type, sha256 });
    }
  }
  writeFileSync(join(scratch, 'manifest.json'), JSON.stringify(manifest));
  const out = join(root, 'test', 'fixtures', 'gguf');
  mkdirSync(out, { recursive: true });
  const r = spawnSync(python, [join(import.meta.dirname, 'check_gguf.py'), join(scratch, 'manifest.json'), join(out, 'gguf-py-report.json')], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
