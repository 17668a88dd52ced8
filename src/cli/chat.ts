// `sftkit chat`: an interactive multi-turn chat in the terminal; replies are streamed token by token.
import { createInterface } from 'node:readline';
import type { Message } from '../data/index.ts';
import { chatPrompter, streamReply } from '../generate/index.ts';
import { loadModel } from '../native/index.ts';
import { loadTokenizer } from '../tokenize/index.ts';
import { baseStoreRule, commandOptions, loadOptionsOf, modelLoad, opt, sampling, samplingOf } from '../options/index.ts';
import { tokenizerDir } from './args.ts';
import { optionsCommand } from './command.ts';

const chatOptions = commandOptions({
  command: 'chat',
  shape: {
    model: opt.string('model directory', { placeholder: 'DIR' }),
    template: opt
      .string(
        "chat template: model (the tokenizer's), chatml, phi3, alpaca, plain or a Jinja file\n(default: the tokenizer's chat template, else chatml when its tokens exist, else alpaca);\nnone: no template, the text is continued as it is",
        { placeholder: 'T' },
      )
      .optional(),
    system: opt.string('a system prompt', { placeholder: 'TEXT' }).optional(),
    ...modelLoad,
    ...sampling,
  },
  rules: baseStoreRule,
});

export const chatCommand = optionsCommand({
  options: chatOptions,
  summary: 'chat with a model in the terminal (streamed replies)',
  about: `Usage: sftkit chat --model DIR [--template T] [--system TEXT] [sampling flags]

An interactive chat: type a message, the reply streams back; the conversation is kept and rendered with the
template each turn. Commands: /reset clears the history, /exit (or Ctrl-D) quits.

`,
  async run(o, io) {
    const modelDir = o.model;
    const loadOptions = loadOptionsOf(o);
    const tok = await loadTokenizer(tokenizerDir(modelDir));
    const prompter = await chatPrompter(tok, o.template);
    const model = await loadModel(modelDir, loadOptions);
    const sampled = { maxNewTokens: 256, temperature: 0, ...samplingOf(o) };
    const history: Message[] = o.system ? [{ role: 'system', content: o.system, trained: false }] : [];
    const rl = createInterface({ input: process.stdin, output: io.stdout, terminal: io.stdout.isTTY === true });
    io.stdout.write(`sftkit chat (${modelDir}, template ${prompter.template}); /reset, /exit\n`);
    try {
      // The line iterator buffers lines that arrive while a reply is generated (piped input).
      io.stdout.write('> ');
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/exit' || text === '/quit') break;
        if (text === '/reset') {
          history.splice(o.system ? 1 : 0);
          io.stdout.write('(history cleared)\n> ');
          continue;
        }
        if (text === '') {
          io.stdout.write('> ');
          continue;
        }
        history.push({ role: 'user', content: text, trained: false });
        let reply = '';
        for await (const delta of streamReply(model, prompter, history, sampled)) {
          io.stdout.write(delta.text);
          reply += delta.text;
        }
        io.stdout.write('\n> ');
        history.push({ role: 'assistant', content: reply.trim(), trained: false });
      }
    } finally {
      rl.close();
      await model.dispose();
    }
    return 0;
  },
});
