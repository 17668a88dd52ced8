// The export room: GGUF for llama.cpp, node-llama-cpp, Ollama and LM Studio (and the reader the tests use).
export { exportGguf, tensorType, type ExportGgufOptions, type ExportGgufResult } from './export-gguf.ts';
export { readGguf, readGgufTensor, type GgufFile, type GgufTensorInfo, type GgufReadValue } from './gguf-reader.ts';
export { writeGguf, ggufHeader, type GgufTensor } from './gguf-writer.ts';
export { GGUF_OUT_TYPES, GgmlType, type GgufOutType, type GgufMetadata, type GgufValue } from './gguf-format.ts';
export { modelfileText, OLLAMA_TEMPLATES, type ModelfileOptions, type ModelfileTemplate } from './modelfile.ts';
export { quantizeQ8_0, f16Bits, bf16Bits, f16Value, bf16Value } from './quantize.ts';
export { planTensors, archMetadata, permuteRope, transpose2d, llama3RopeFactors } from './gguf-arch.ts';
export { tokenizerMetadata, ggufVocab, preTokenizerName } from './gguf-tokenizer.ts';
