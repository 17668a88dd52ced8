// Types of device-pack.mjs (plain JavaScript, run by `npm run device:pack`) for the TypeScript tests.

export interface DevicePackManifest {
  created: string;
  node?: { path: string; size: number; mtimeMs: number; version: string; sha256: string };
  packages: string[];
  files: Record<string, number>;
  totalBytes: number;
}

export function productionPackages(root?: string): string[];
export function pack(options?: { root?: string; out?: string; node?: string | null; maxMiB?: number; log?: (m: string) => void }): DevicePackManifest;
