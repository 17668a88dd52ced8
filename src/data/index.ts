// The data room's public surface: readers, URL cache, formats, conversation model.

export * from './types.ts';
export { readRecords, readJsonl, readJsonArray, type FileLayout, type ReadOptions } from './read-records.ts';
export { resolveDataSource, cacheRoot, cachedPathFor, isUrl, type ResolvedSource } from './data-source.ts';
export { detectFormat, detectFormatOrThrow, toExample, validateFieldMap, validateFormat } from './formats.ts';
export { openDataset, loadExamples, type OpenOptions, type OpenedDataset } from './load-examples.ts';
