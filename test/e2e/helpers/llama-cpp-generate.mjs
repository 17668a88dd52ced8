// node-llama-cpp (llama.cpp, a client sftkit did not write) on GGUF files exported by sftkit. Run with plain
// `node` from a file (node-llama-cpp tests its binary in a forked process that inherits Node's flags):
//   node test/e2e/helpers/llama-cpp-generate.mjs JOB.json
// JOB: {"threads": 2, "models": [{"path", "contextSize", "prompt": [ids], "maxTokens", "teacherForced": [ids],
//        "texts": [strings to tokenize]}]}
// Prints one JSON object: {"results": [{"path", "generated": [ids], "top1": [ids], "tokenized": [[ids]], "ms"}]}.
// Loads the prebuilt linux-x64 binary from npm (build: 'never'): nothing is compiled or downloaded.
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error', progressLogs: false });
const results = [];
for (const m of job.models) {
  const start = Date.now();
  const model = await llama.loadModel({ modelPath: m.path });
  const context = await model.createContext({ contextSize: m.contextSize, batchSize: m.contextSize, threads: job.threads ?? 2, sequences: 1 });
  const result = { path: m.path, generated: [], top1: [], tokenized: [] };
  try {
    const seq = context.getSequence();
    for await (const token of seq.evaluate(m.prompt, { temperature: 0 })) {
      result.generated.push(token);
      if (result.generated.length >= m.maxTokens) break;
    }
    await seq.clearHistory();
    if (m.teacherForced?.length) {
      const out = await seq.controlledEvaluate(
        m.teacherForced.map((t) => [t, { generateNext: { token: true, options: { temperature: 0 } } }]),
      );
      result.top1 = out.map((o) => o?.next?.token ?? -1);
    }
    for (const text of m.texts ?? []) result.tokenized.push(Array.from(model.tokenize(text, false)));
  } finally {
    await context.dispose();
    await model.dispose();
  }
  result.ms = Date.now() - start;
  results.push(result);
}
process.stdout.write(`${JSON.stringify({ results })}\n`);
await llama.dispose();
