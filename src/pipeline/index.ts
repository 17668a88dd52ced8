// The pipeline room's door: records -> tokenized datasets. It composes the rooms upstream of it (data reads records,
// template renders, tokenize + mask produce ids/labels) and owns what needs all of them: the resolved pipeline,
// inspection, dataset preparation with its splits and the tokenized-dataset cache.

export * from './pipeline.ts';
export * from './inspection.ts';
export * from './dataset.ts';
export * from './split.ts';
export * from './dataset-cache.ts';
