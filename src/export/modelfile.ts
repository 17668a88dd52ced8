// An Ollama Modelfile beside an exported GGUF (https://github.com/ollama/ollama/blob/main/docs/modelfile.md):
// FROM the file, the prompt TEMPLATE (Go text/template over .System/.Prompt/.Response, or .Messages for chat) for the
// prompt styles sftkit knows, the stop sequences and PARAMETER defaults. Pure: text in, text out.
import { ALPACA_PREAMBLE } from '../template/index.ts';

export type ModelfileTemplate = 'plain' | 'alpaca' | 'chatml' | 'phi3';

export interface ModelfileOptions {
  /** The FROM path, relative to the Modelfile (`./name.gguf`). */
  from: string;
  /** The prompt style the model was trained with (undefined: Ollama's default, the prompt as it is). */
  template?: ModelfileTemplate;
  /** The end-of-sequence token text (a stop sequence). */
  eosToken?: string;
  /** num_ctx: the context the model was trained for. */
  contextLength?: number;
  /** A comment line at the top (what it was exported from). */
  comment?: string;
}

/** The Ollama TEMPLATE of each prompt style, rendering what sftkit's template renders before the answer. */
export const OLLAMA_TEMPLATES: Readonly<Record<ModelfileTemplate, string>> = {
  plain: '{{ .Prompt }}',
  alpaca:
    `{{ if .System }}{{ .System }}{{ else }}${ALPACA_PREAMBLE}{{ end }}\n\n### Instruction:\n{{ .Prompt }}\n\n### Response:\n{{ .Response }}`,
  // .Messages holds the system message too (Ollama's documented ChatML example), so no separate .System block
  chatml: '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n',
  phi3: '{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n',
};

const TEMPLATE_STOPS: Readonly<Record<ModelfileTemplate, readonly string[]>> = {
  plain: [],
  alpaca: ['### Instruction:'],
  chatml: ['<|im_end|>', '<|im_start|>'],
  phi3: ['<|end|>', '<|user|>'],
};

/** A Modelfile string value: "..." with \ and " escaped, or """...""" for multi-line text. */
function quote(value: string): string {
  if (!value.includes('\n') && !value.includes('"')) return `"${value}"`;
  if (value.includes('"""')) return JSON.stringify(value);
  return `"""${value}"""`;
}

/** The Modelfile text. */
export function modelfileText(options: ModelfileOptions): string {
  const lines: string[] = [];
  if (options.comment !== undefined) for (const l of options.comment.split('\n')) lines.push(`# ${l}`);
  lines.push(`FROM ${options.from}`);
  if (options.template !== undefined) lines.push(`TEMPLATE ${quote(OLLAMA_TEMPLATES[options.template])}`);
  const stops = [...(options.eosToken !== undefined ? [options.eosToken] : []), ...(options.template ? TEMPLATE_STOPS[options.template] : [])];
  for (const s of [...new Set(stops)]) lines.push(`PARAMETER stop ${quote(s)}`);
  lines.push('# greedy, as `sftkit generate` answers by default');
  lines.push('PARAMETER temperature 0');
  if (options.contextLength !== undefined) lines.push(`PARAMETER num_ctx ${options.contextLength}`);
  return `${lines.join('\n')}\n`;
}
