// `sftkit ui` flags: errors that name the flag or the directory, and --help.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../../src/cli/main.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string) => out.push(s) > 0 }, stderr: { write: (s: string) => err.push(s) > 0 } } as never };
}

test('sftkit ui: a missing --runs directory, a bad --port, a busy port and an unknown flag are errors that say so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-ui-cli-'));
  try {
    let c = io();
    assert.equal(await main(['ui', '--runs', join(dir, 'nope')], c.io), 1);
    assert.match(c.err.join(''), /--runs .*nope: no such directory/);
    c = io();
    assert.equal(await main(['ui', '--runs', dir, '--port', '70000'], c.io), 1);
    assert.match(c.err.join(''), /a port in \[0, 65535\] for --port/);
    c = io();
    assert.equal(await main(['ui', '--runs', dir, '--models', join(dir, 'missing')], c.io), 1);
    assert.match(c.err.join(''), /missing: no such file or directory/);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    c = io();
    assert.equal(await main(['ui', '--runs', dir, '--port', String(port)], c.io), 1);
    busy.close();
    assert.match(c.err.join(''), new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
    c = io();
    assert.equal(await main(['ui', '--bogus'], c.io), 2);
    c = io();
    assert.equal(await main(['ui', '--help'], c.io), 0);
    assert.match(c.out.join(''), /--runs DIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
