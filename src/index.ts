// Public library API of sftkit.
export { SftkitError, invalidParameterError, dataError, type SftkitErrorCode } from './errors.ts';
export { binding, readLibtorchRecord, type NativeBinding, type RuntimeInfo, type LibtorchRecord } from './native/binding.ts';
export { doctorReport, type DoctorReport } from './cli/doctor.ts';
export { shippedModelDir, shippedDataFile } from './shipped.ts';
export * from './data-api.ts';
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
} from './native/model.ts';
export { readModelConfig, type ModelSpec } from './native/model-config.ts';
export { train, type TrainHooks, type TrainResult } from './recipes/sft.ts';
export { trainDpo } from './recipes/dpo.ts';
export { validateTrainOptions, validateDpoOptions, parseTrainArgs, loadConfigFile, type TrainOptions, type DpoOptions } from './training/index.ts';
export { preparePreferencePairs, preferenceMetrics, type PreferencePair, type PreferenceMetrics } from './training/index.ts';
export { distillDataset, type DistillDataOptions, type DistillDataResult } from './generate/distill-data.ts';
export { truncateLayers } from './convert/truncate-layers.ts';
export { lrAt, warmupSteps, type ScheduleName } from './training/index.ts';
export { readMetrics, type MetricRecord } from './training/index.ts';
export { evaluateLoss, generateResponses, LocalModelJudge, type LossReport } from './eval/evaluate.ts';
export { OpenAiJudge, scoreResponses, judgePrompt, type Judge, type ResponseRecord } from './eval/judge.ts';
export { promptIds, stopIdsFor } from './generate/prompt.ts';
export { streamText, replyText } from './generate/stream-text.ts';
export { convertLlama2c } from './convert/llama2c.ts';
export { loadSafetensors, saveSafetensors, safetensorsInfo } from './native/safetensors.ts';
