// Chooses a PromptTemplate from a name or a custom template file, and the default for a record format.

import { readFileSync } from 'node:fs';
import type { RecordFormat } from '../data/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { alpacaTemplate, chatmlTemplate, phi3Template, plainTemplate } from './builtin-templates.ts';
import { jinjaTemplate } from './jinja-template.ts';
import { TEMPLATE_NAMES, type PromptTemplate, type TemplateContext, type TemplateName } from './types.ts';

/** A built-in name, or `{ file }`: a Jinja chat template in a file (same variables as a tokenizer's template). */
export type TemplateChoice = TemplateName | { file: string };

/** `alpaca` for alpaca records, `plain` for instruct/prompt-completion/text, `model` (if any) else `chatml` for chat. */
export function defaultTemplate(format: RecordFormat, ctx: TemplateContext): TemplateName {
  switch (format) {
    case 'alpaca':
      return 'alpaca';
    case 'instruct':
    case 'prompt-completion':
    case 'text':
      return 'plain';
    case 'chat':
    case 'sharegpt':
    case 'preference':
      return ctx.chatTemplate !== undefined ? 'model' : 'chatml';
  }
}

/** Parses a CLI/options value: a built-in name, else a path to a template file. */
export function parseTemplateChoice(value: unknown): TemplateChoice {
  if (typeof value === 'string' && (TEMPLATE_NAMES as readonly string[]).includes(value)) return value as TemplateName;
  if (typeof value === 'string' && value !== '') return { file: value };
  if (value !== null && typeof value === 'object' && typeof (value as { file?: unknown }).file === 'string') {
    return { file: (value as { file: string }).file };
  }
  throw invalidParameterError('template', `one of ${TEMPLATE_NAMES.join(', ')} or a template file path`, value);
}

export function createTemplate(choice: TemplateChoice, ctx: TemplateContext): PromptTemplate {
  if (typeof choice === 'object') {
    let source: string;
    try {
      source = readFileSync(choice.file, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Most often a mistyped built-in name: say both what it is not and what does not exist.
        throw new SftkitError(
          'SFTKIT_BAD_ARGUMENT',
          `--template ${choice.file}: not a built-in template (${TEMPLATE_NAMES.join(', ')}) and no file ${choice.file} ` +
            'exists (a Jinja chat template file)',
          { cause: err },
        );
      }
      throw new SftkitError('SFTKIT_IO', `cannot read template file ${choice.file} (${(err as Error).message})`, { cause: err });
    }
    try {
      return jinjaTemplate(source, ctx, 'file');
    } catch (err) {
      if (err instanceof SftkitError) throw new SftkitError(err.code, `${choice.file}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  switch (choice) {
    case 'plain':
      return plainTemplate(ctx);
    case 'alpaca':
      return alpacaTemplate(ctx);
    case 'phi3':
      return phi3Template(ctx);
    case 'chatml':
      return chatmlTemplate(ctx);
    case 'model':
      if (ctx.chatTemplate === undefined) {
        throw new SftkitError('SFTKIT_UNSUPPORTED', 'the tokenizer has no chat_template: choose --template chatml, phi3, alpaca or plain, or a template file');
      }
      return jinjaTemplate(ctx.chatTemplate, ctx, 'model');
  }
}
