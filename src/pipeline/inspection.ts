// Inspection: a data file opened with its resolved pipeline, and one example as the model reads it (segments,
// ids/labels or why it is dropped, text pieces with trained flags). What `sftkit inspect` and the web inspector show.

import { invalidParameterError } from '../errors.ts';
import { type Example, type FieldMap, openDataset, type RecordFormat, type RecordLocation } from '../data/index.ts';
import { type MaskedPiece, maskedPieces, type MaskResult } from '../mask/index.ts';
import type { Segment } from '../template/index.ts';
import type { AddedTokenInfo } from '../tokenize/index.ts';
import { createPipeline, prepareExample, type Pipeline, type PipelineOptions } from './pipeline.ts';

/** What `sftkit inspect` and the web inspector read: a data file and the pipeline options. */
export interface InspectOptions extends PipelineOptions {
  /** A JSON/JSONL/Parquet/CSV/TSV file, a dataset directory (its train split), or an http(s) URL (cached). */
  data: string;
  format?: RecordFormat | 'auto' | undefined;
  fieldMap?: FieldMap | undefined;
  limit?: number | undefined;
  dataCacheDir?: string | undefined;
}

/** An opened data file with its resolved pipeline; `examples` streams the records in file order (single use). */
export interface Inspection {
  displayName: string;
  path: string;
  format: RecordFormat;
  pipeline: Pipeline;
  addedTokens: AddedTokenInfo[];
  examples: AsyncGenerator<Example>;
}

/** One example as the model reads it: its segments, its ids/labels (or why it is dropped), and its text pieces. */
export interface InspectedExample {
  where: RecordLocation;
  segments: Segment[];
  result: MaskResult;
  /** The kept example's tokens as text pieces with trained flags; empty when dropped. */
  pieces: MaskedPiece[];
}

/** Opens a data file for inspection: the format is settled from the first record and the pipeline resolved. */
export async function openInspection(options: InspectOptions): Promise<Inspection> {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options);
  const opened = await openDataset(options.data, {
    ...(options.format !== undefined ? { format: options.format } : {}),
    ...(options.fieldMap !== undefined ? { fieldMap: options.fieldMap } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.dataCacheDir !== undefined ? { cacheDir: options.dataCacheDir } : {}),
  });
  try {
    const { pipeline, addedTokens } = await createPipeline(opened.format, options);
    return { displayName: opened.displayName, path: opened.path, format: opened.format, pipeline, addedTokens, examples: opened.examples };
  } catch (e) {
    await opened.examples.return(undefined);
    throw e;
  }
}

/**
 * prepareExample plus the text pieces of the kept example (the inspectors' view): per token (default) or per run of
 * trained / masked tokens; `pieces: false` skips them when only ids and counts are wanted.
 */
export function inspectExample(example: Example, p: Pipeline, options: { pieces?: 'token' | 'run' | false } = {}): InspectedExample {
  const { segments, result } = prepareExample(example, p);
  const granularity = options.pieces ?? 'token';
  const pieces = result.kept && granularity !== false ? maskedPieces(result.example, p.tokenizer, granularity) : [];
  return { where: example.where, segments, result, pieces };
}
