// The web mask inspector: a page of examples of a data file as the model reads them (text pieces with token ids,
// trained or masked) and the counts over the whole file, through the same engine as `sftkit inspect`
// (openInspection + inspectExample). The counts of a (model, file, options) are kept, so paging only tokenizes
// the page; tokenizers are kept per model directory.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { inspectExample, openInspection, type InspectOptions } from '../pipeline/index.ts';
import { datasetDirectory, directorySplit, type FieldMap, type RecordFormat } from '../data/index.ts';
import {
  addToSummary,
  type DropReason,
  emptySummary,
  formatUnkWarning,
  type MaskedPiece,
  type MaskMode,
  type MaskSummary,
  type Truncation,
} from '../mask/index.ts';
import { loadTokenizer, type TextTokenizer } from '../tokenize/index.ts';

export interface InspectRequest {
  /** Realpath of the model (tokenizer) directory. */
  model: string;
  /** Realpath of the data file or dataset directory (its train split). */
  data: string;
  format?: RecordFormat | 'auto' | undefined;
  template?: string | undefined;
  mask?: MaskMode | undefined;
  maxLength?: number | undefined;
  truncation?: Truncation | undefined;
  fieldMap?: FieldMap | undefined;
  addSpecialTokens?: boolean | undefined;
  offset: number;
  limit: number;
}

export interface InspectedView {
  /** Position in the file (0-based example index). */
  index: number;
  record: number;
  file: string;
  line: number;
  kept: boolean;
  reason: DropReason | null;
  tokens: number;
  trainedTokens: number;
  maskedTokens: number;
  truncated: boolean;
  /** Kept examples: the tokens as text pieces. */
  pieces: MaskedPiece[];
  /** Dropped examples: the rendered segments (nothing was tokenized to keep). */
  segments: { text: string; trained: boolean }[];
}

export interface InspectPage {
  model: string;
  data: string;
  format: RecordFormat;
  template: string;
  mask: MaskMode;
  maxLength: number | null;
  truncation: Truncation;
  addedTokens: { content: string; id: number }[];
  summary: MaskSummary;
  /** What `sftkit inspect` warns about for the same file (e.g. text the tokenizer reads as its unknown token). */
  warnings: string[];
  offset: number;
  limit: number;
  examples: InspectedView[];
}

/** The unknown-token warning of `sftkit inspect` for a page's counts (none when nothing became the unknown token). */
function unkWarnings(summary: MaskSummary, data: string, tok: TextTokenizer): string[] {
  const warning = formatUnkWarning(summary, data, tok.unkId === undefined ? undefined : tok.idToToken(tok.unkId));
  return warning === undefined ? [] : [warning.replace(/^warning: /, '')];
}

const stamp = (path: string): string => {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
};

/** The stamp of a data file, or of every train file of a dataset directory (a shard rewritten in place counts). */
async function dataStamp(path: string): Promise<string> {
  try {
    if ((await datasetDirectory(path)) === undefined) return stamp(path);
    return (await directorySplit(path, 'train')).files.map((f) => `${f}:${stamp(f)}`).join('|');
  } catch {
    return 'unreadable'; // opening it says why
  }
}

export class Inspector {
  private readonly summaries = new Map<string, MaskSummary>();
  private readonly tokenizers = new Map<string, { stamp: string; tokenizer: Promise<TextTokenizer> }>();

  async page(r: InspectRequest): Promise<InspectPage> {
    const tokenizer = await this.tokenizer(r.model);
    const options: InspectOptions = {
      data: r.data,
      format: r.format,
      fieldMap: r.fieldMap,
      tokenizer,
      template: r.template,
      mask: r.mask,
      maxLength: r.maxLength,
      truncation: r.truncation,
      addSpecialTokens: r.addSpecialTokens,
    };
    const key = JSON.stringify([r.model, stamp(join(r.model, 'tokenizer.json')), r.data, await dataStamp(r.data), r.format, r.template, r.mask, r.maxLength, r.truncation, r.fieldMap, r.addSpecialTokens]);
    const known = this.summaries.get(key);
    const summary = known ?? emptySummary();
    const opened = await openInspection(options);
    const { pipeline } = opened;
    const end = r.offset + r.limit;
    const examples: InspectedView[] = [];
    let i = 0;
    for await (const example of opened.examples) {
      const inPage = i >= r.offset && i < end;
      if (known && i >= end) break;
      if (!known || inPage) {
        const view = inspectExample(example, pipeline, { pieces: inPage ? 'token' : false });
        if (!known) addToSummary(summary, view.result);
        if (inPage) {
          const res = view.result;
          const n = res.kept ? res.example.inputIds.length : res.tokens;
          examples.push({
            index: i,
            record: example.where.record,
            file: example.where.file,
            line: example.where.line,
            kept: res.kept,
            reason: res.kept ? null : res.reason,
            tokens: n,
            trainedTokens: res.kept ? res.trainedTokens : 0,
            maskedTokens: res.kept ? n - res.trainedTokens : 0,
            truncated: res.kept ? res.truncated : false,
            pieces: view.pieces,
            segments: res.kept ? [] : view.segments.map((s) => ({ text: s.text, trained: s.trained })),
          });
        }
      }
      i++;
    }
    if (!known) {
      if (this.summaries.size >= 16) this.summaries.delete(this.summaries.keys().next().value as string);
      this.summaries.set(key, summary);
    }
    return {
      model: r.model,
      data: r.data,
      format: opened.format,
      template: pipeline.template.id,
      mask: pipeline.mask,
      maxLength: pipeline.maxLength ?? null,
      truncation: pipeline.truncation,
      addedTokens: opened.addedTokens.map((a) => ({ content: a.content, id: a.id })),
      summary,
      warnings: unkWarnings(summary, r.data, pipeline.tokenizer),
      offset: r.offset,
      limit: r.limit,
      examples,
    };
  }

  private tokenizer(dir: string): Promise<TextTokenizer> {
    const s = stamp(join(dir, 'tokenizer.json'));
    const known = this.tokenizers.get(dir);
    if (known && known.stamp === s) return known.tokenizer;
    const tokenizer = loadTokenizer(dir);
    tokenizer.catch(() => this.tokenizers.delete(dir));
    if (this.tokenizers.size >= 8) this.tokenizers.delete(this.tokenizers.keys().next().value as string);
    this.tokenizers.set(dir, { stamp: s, tokenizer });
    return tokenizer;
  }
}
