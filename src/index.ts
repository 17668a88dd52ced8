// Public library API of sftkit.
export { SftkitError, invalidParameterError, dataError, type SftkitErrorCode } from './errors.ts';
export { binding, readLibtorchRecord, type NativeBinding, type RuntimeInfo, type LibtorchRecord } from './native/index.ts';
export { doctorReport, type DoctorReport } from './native/index.ts';
export { shippedModelDir, shippedDataFile } from './shipped.ts';
export {
  createPipeline,
  templateContext,
  prepareExample,
  tokenizeExamples,
  openInspection,
  inspectExample,
  prepareDataset,
  splitIndices,
  type Pipeline,
  type PipelineOptions,
  type InspectOptions,
  type Inspection,
  type InspectedExample,
  type PrepareOptions,
  type PreparedDataset,
  type SplitOptions,
  type SplitIndices,
} from './pipeline/index.ts';
export {
  batches,
  collate,
  collateForLoss,
  collatePacked,
  lossForm,
  realTokens,
  planBatches,
  packBestFitDecreasing,
  type Batch,
  type BatchOptions,
  type BatchPlanOptions,
} from './collate/index.ts';
export {
  IGNORE_INDEX,
  formatSummary,
  formatUnkWarning,
  emptySummary,
  addToSummary,
  maskedPieces,
  maskedRuns,
  type MaskMode,
  type MaskSummary,
  type MaskedPiece,
  type DropReason,
  type MaskResult,
  type TokenizedExample,
  type Truncation,
  type UnkReport,
} from './mask/index.ts';
export { TextTokenizer, loadTokenizer, saveTokenizer, addSpecialTokens, type AddedTokenInfo } from './tokenize/index.ts';
export {
  openDataset,
  loadExamples,
  type DataFiles,
  type DataSource,
  type Example,
  type FieldMap,
  type Message,
  type RecordFormat,
  type Role,
  type SplitName,
} from './data/index.ts';
export type { PromptTemplate, Segment, TemplateChoice, TemplateName } from './template/index.ts';
export { Rng } from './shared/index.ts';
export {
  loadModel,
  Model,
  type Batch as ModelBatch,
  type GenerateOptions,
  type GenerateStep,
  type LoadModelOptions,
  type LossSum,
  type OptimizerStepOptions,
  type StepOptions,
  type DistillStepOptions,
  type DistillStepResult,
  type PreferenceLossType,
  type PreferenceStepOptions,
  type PreferenceStepResult,
} from './native/index.ts';
export { readModelConfig, type ModelSpec } from './native/index.ts';
export { train, type TrainHooks, type TrainResult } from './recipes/sft.ts';
export { trainDpo } from './recipes/dpo.ts';
export { validateTrainOptions, validateDpoOptions, parseTrainArgs, loadConfigFile, type TrainOptions, type DpoOptions } from './training/index.ts';
export { preparePreferencePairs, preferenceMetrics, type PreferencePair, type PreferenceMetrics } from './training/index.ts';
export { distillDataset, type DistillDataOptions, type DistillDataResult } from './generate/index.ts';
export { truncateLayers } from './convert/index.ts';
export { lrAt, warmupSteps, type ScheduleName } from './training/index.ts';
export { readMetrics, type MetricRecord } from './report/index.ts';
export { evaluateLoss, generateResponses, LocalModelJudge, type LossReport } from './eval/index.ts';
export { OpenAiJudge, scoreResponses, judgePrompt, type Judge, type ResponseRecord } from './eval/index.ts';
export { promptIds, stopIdsFor } from './generate/index.ts';
export { streamText, replyText } from './generate/index.ts';
export { convertLlama2c } from './convert/index.ts';
export { loadSafetensors, saveSafetensors, safetensorsInfo } from './native/index.ts';
export { exportGguf, readGguf, readGgufTensor, type ExportGgufOptions, type ExportGgufResult, type GgufFile, type GgufOutType } from './export/index.ts';
