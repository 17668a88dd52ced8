// Types of libtorch-source.mjs (plain JavaScript, run at install time) for the TypeScript tests.

export type TorchVariant = 'cpu' | 'cu126' | 'cu128' | 'cu130';
export type Env = Record<string, string | undefined>;

export const TORCH_VARIANTS: readonly TorchVariant[];
export const CUDA_VARIANTS: readonly { variant: TorchVariant; cuda: [number, number] }[];
export const DRIVER_CUDA: readonly { driver: [number, number, number]; cuda: [number, number] }[];
export const PYTORCH_SITE: string;
export const PYPI_SIMPLE: string;
export const CACHE_MARKER: string;

export class SourceError extends Error {}

export function parseNvidiaSmi(text: string | null | undefined): { driver: string | null; cuda: string | null } | null;
export function cudaOfDriver(driver: string): string | null;
export function newestVariantFor(cuda: string): TorchVariant | null;
export function chooseVariant(options: {
  env?: Env;
  platform: string;
  arch: string;
  nvidiaSmi?: () => string | null;
}): { variant: TorchVariant; why: string };
export function cacheDirName(version: string, variant: string): string;
export function splitDigest(url: string): { url: string; sha256: string | null };
export function fileNameOf(url: string): string;

export type TorchSource =
  | { kind: 'archive'; url: string; sha256: string | null; fileName: string; prefix: 'libtorch/' }
  | { kind: 'wheel'; indexUrl: string; pageUrl: string; version: string; platformTag: string; prefix: 'torch/' };
export function torchSource(options: { platform: string; arch: string; variant: string; version: string; env?: Env }): TorchSource;

export interface IndexLink {
  fileName: string;
  url: string;
  sha256: string | null;
}
export function parseSimpleIndex(html: string, pageUrl: string): IndexLink[];
export function parseWheelName(fileName: string): {
  name: string;
  version: string;
  build: string | null;
  python: string[];
  abi: string;
  platforms: string[];
} | null;
export function pickWheel(
  links: IndexLink[],
  options: { version: string; platformTag: string; glibc?: string | null },
): { wheel: IndexLink | null; candidates: string[] };
export function pipDownloadArgs(options: {
  platform: string;
  arch: string;
  variant: string;
  version: string;
  dest: string;
  env?: Env;
}): { spec: string; args: string[] } | null;
