// The template room's public surface.

export * from './types.ts';
export { ALPACA_PREAMBLE, alpacaTemplate, chatmlTemplate, phi3Template, plainTemplate } from './builtin-templates.ts';
export { jinjaTemplate, END_OF_TURN_TOKENS } from './jinja-template.ts';
export { createTemplate, defaultTemplate, parseTemplateChoice, type TemplateChoice } from './resolve-template.ts';
export { SegmentBuilder, normalizeSegments, segmentsText } from './segments.ts';
