// What the dashboard may open: the --runs tree and the directories (or files) given with --models / --data. A path
// from a request is checked as text first (no NUL, no `..` segment, none hidden behind percent-encoding), then
// resolved with realpath (symlinks followed) and must lie inside one of the roots, themselves realpath'd.
import { realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { SftkitError } from '../errors.ts';
import { HttpError } from './http.ts';

export interface AccessRoots {
  /** Realpaths of the roots, in the order given (the --runs tree first). */
  readonly roots: readonly string[];
}

/** Resolves the roots once at start; a root that does not exist is an error naming it. */
export function accessRoots(paths: readonly string[], base = process.cwd()): AccessRoots {
  const roots: string[] = [];
  for (const p of paths) {
    let real: string;
    try {
      real = realpathSync(resolve(base, p));
    } catch (e) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    if (!roots.includes(real)) roots.push(real);
  }
  return { roots };
}

/** True when `real` is `root` or below it. Both must be realpaths. */
export function isInside(root: string, real: string): boolean {
  if (real === root) return true;
  const rel = relative(root, real);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

const DOT_DOT = /(^|[\\/])\.\.([\\/]|$)/;

/** Rejects what no legitimate path needs: NUL bytes, `..` segments, and `..` or NUL spelled with %-escapes. */
export function checkPathText(name: string, input: unknown): string {
  if (typeof input !== 'string' || input === '') throw new HttpError(400, `${name}: a path is required`);
  if (input.length > 4096) throw new HttpError(400, `${name}: the path is too long`);
  let decoded = input;
  for (let i = 0; i < 3 && /%[0-9a-f]{2}/i.test(decoded); i++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      break;
    }
  }
  for (const text of [input, decoded]) {
    if (text.includes('\0')) throw new HttpError(400, `${name}: the path holds a NUL byte`);
    if (DOT_DOT.test(text)) throw new HttpError(403, `${name}: ".." is not allowed in paths`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw new HttpError(403, `${name}: only local paths inside the allowed directories can be opened, not URLs`);
  return input;
}

/**
 * The realpath of `input` (relative paths are taken from the first root), or 403 when it is outside every root,
 * 404 when it does not exist. `kind` checks what it must be.
 */
export async function resolveAllowed(access: AccessRoots, name: string, input: unknown, kind: 'file' | 'directory' | 'any' = 'any'): Promise<string> {
  const text = checkPathText(name, input);
  const abs = isAbsolute(text) ? text : resolve(access.roots[0] ?? process.cwd(), text);
  let real: string;
  try {
    real = await realpath(abs);
  } catch (e) {
    // Say "not allowed" rather than "not found" for paths outside: existence outside the roots is not disclosed.
    const lexicallyInside = access.roots.some((r) => isInside(r, abs));
    if (!lexicallyInside) throw new HttpError(403, `${name}: ${text} is outside the directories this dashboard may open`);
    throw new HttpError(404, `${name}: ${text}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  if (!access.roots.some((r) => isInside(r, real))) {
    throw new HttpError(403, `${name}: ${text} is outside the directories this dashboard may open (${access.roots.join(', ')})`);
  }
  if (kind !== 'any') {
    const s = await stat(real);
    if (kind === 'file' && !s.isFile()) throw new HttpError(400, `${name}: ${text} is not a file`);
    if (kind === 'directory' && !s.isDirectory()) throw new HttpError(400, `${name}: ${text} is not a directory`);
  }
  return real;
}
