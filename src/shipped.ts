// Paths of the model and data that ship inside the sftkit package (the quick start's defaults), so that a project
// depending on sftkit can try it without downloading anything.
import { join } from 'node:path';
import { packageRoot } from './native/index.ts';

/** TinyStories-656K: a real 656K-parameter Llama in Hugging Face layout (Apache-2.0, SOURCE.md beside it). */
export const shippedModelDir: string = join(packageRoot, 'test', 'fixtures', 'models', 'tinystories-656k');

/** LLMs-from-scratch ch. 7's instruction-data.json: 1100 Alpaca records (Apache-2.0, SOURCE.md beside it). */
export const shippedDataFile: string = join(packageRoot, 'test', 'fixtures', 'data', 'instruction-data.json');
