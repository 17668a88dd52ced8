// The tokenize room's public surface.

export {
  TextTokenizer,
  loadTokenizer,
  addSpecialTokens,
  saveTokenizer,
  type AddedTokenInfo,
  type AddTokensResult,
  type EncodeOptions,
  type TokenizerFiles,
} from './tokenizer.ts';
