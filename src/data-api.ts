// TEMPORARY (issue 21): the old data front end's names, while src/cli moves to the room doors; deleted after.

export type { Batch } from './collate/batch.ts';
export type { BatchPlanOptions } from './collate/batch-plan.ts';
export type { SplitOptions, SplitIndices } from './pipeline/split.ts';
export type { Example, FieldMap, Message, RecordFormat, Role } from './data/types.ts';
export type { DataFiles, DataSource, SplitName } from './data/index.ts';
export type { MaskMode } from './mask/mask-mode.ts';
export type { MaskSummary } from './mask/mask-summary.ts';
export type { MaskedPiece } from './mask/masked-pieces.ts';
export type { DropReason, MaskResult, TokenizedExample, Truncation, UnkReport } from './mask/tokenize-with-mask.ts';
export type { PromptTemplate, Segment, TemplateName } from './template/types.ts';
export type { TemplateChoice } from './template/resolve-template.ts';
export type { AddedTokenInfo } from './tokenize/tokenizer.ts';
export { IGNORE_INDEX } from './mask/tokenize-with-mask.ts';
export { formatSummary, formatUnkWarning, emptySummary, addToSummary } from './mask/mask-summary.ts';
export { maskedPieces, maskedRuns } from './mask/masked-pieces.ts';
export { TextTokenizer, loadTokenizer, saveTokenizer, addSpecialTokens } from './tokenize/tokenizer.ts';
export { collate, collatePacked } from './collate/batch.ts';
export { planBatches } from './collate/batch-plan.ts';
export { packBestFitDecreasing } from './collate/pack.ts';
export { splitIndices } from './pipeline/split.ts';
export { Rng } from './shared/prng.ts';
export { openDataset, loadExamples } from './data/load-examples.ts';
export { batches, type BatchOptions } from './collate/batches.ts';
export * from './pipeline/index.ts';
