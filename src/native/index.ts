// The native room's door: the single loader of the addon (binding.ts mirrors what it exports) and the typed wrappers
// over it: `Model` (load, steps, optimizer, LoRA, save, generation), model configs, safetensors, process groups.

export * from './binding.ts';
export * from './call.ts';
export * from './model-config.ts';
export * from './model.ts';
export * from './lora.ts';
export * from './safetensors.ts';
export * from './distributed.ts';
export * from './doctor.ts';
