// The data room's public surface: readers (JSON, JSONL, Parquet, CSV, TSV, dataset directories), URL cache, formats,
// conversation model.

export * from './types.ts';
export {
  readRecords,
  readJsonl,
  readJsonArray,
  type DataSource,
  type FileLayout,
  type ReadOptions,
} from './read-records.ts';
export { readParquet, jsonValue } from './read-parquet.ts';
export { readDelimited } from './read-csv.ts';
export {
  readDatasetDirectory,
  directorySplit,
  datasetDirectory,
  splitOfPath,
  SPLIT_NAMES,
  EVAL_SPLITS,
  DATA_EXTENSIONS,
  type DataFiles,
  type DatasetDirectory,
  type SplitName,
} from './dataset-dir.ts';
export { resolveDataSource, cacheRoot, cachedPathFor, hashDataFiles, isUrl, type ResolvedSource } from './data-source.ts';
export * from './formats.ts';
export { openDataset, loadExamples, splitSources, type OpenOptions, type OpenedDataset } from './load-examples.ts';
