// Judge scoring against a small OpenAI-compatible server on 127.0.0.1 started here: request shape, URL forms,
// retries after a 500, errors naming URL and status, timeouts, garbage answers counted as unparseable.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import {
  OpenAiJudge,
  alpacaInput,
  chatCompletionsUrl,
  judgePrompt,
  parseScore,
  scoreResponses,
  type ResponseRecord,
} from '../../../src/eval/judge.ts';

interface Seen {
  url: string;
  method: string;
  auth: string | undefined;
  body: { model: string; messages: { role: string; content: string }[]; temperature: number };
}
const seen: Seen[] = [];
let mode: 'derive' | 'fail-once' | 'always-500' | 'garbage' | 'hang' | '404' | 'no-choices' = 'derive';
let failures = 0;
let server: Server;
let base = '';

function reply(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
}
const completion = (content: string) => ({ choices: [{ index: 0, message: { role: 'assistant', content } }] });

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as Seen['body'];
      seen.push({ url: req.url ?? '', method: req.method ?? '', auth: req.headers.authorization, body });
      if (mode === 'hang') return; // never answers
      if (mode === '404') return reply(res, 404, { error: 'model "nope" not found' });
      if (mode === 'always-500') return reply(res, 500, { error: 'overloaded' });
      if (mode === 'fail-once' && failures++ === 0) return reply(res, 500, { error: 'warming up' });
      if (mode === 'no-choices') return reply(res, 200, { error: 'strange' });
      if (mode === 'garbage') return reply(res, 200, completion('I cannot rate this.'));
      // derive: the score is the length of the model response, in a chatty sentence
      const m = /score the model response `([^`]*)`/.exec(body.messages[0]!.content);
      reply(res, 200, completion(`On a scale from 0 to 100, I would give it ${m ? m[1]!.length : 0}.`));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const records: ResponseRecord[] = [
  { instruction: 'Rewrite the sentence using a simile.', input: 'The car is very fast.', output: 'The car is as fast as lightning.', model_response: 'The car is as fast as a bullet.' },
  { instruction: 'What type of cloud is typically associated with thunderstorms?', input: '', output: 'cumulonimbus', model_response: 'cumulus' },
  { instruction: 'Name the author of Pride and Prejudice.', output: 'Jane Austen.', model_response: 'Jane Austen' },
];

test('the prompt is the ch. 7 wording with the Alpaca input block', () => {
  const p = judgePrompt(records[0]!);
  assert.ok(p.startsWith('Given the input `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nRewrite the sentence using a simile.\n\n### Input:\nThe car is very fast.` and correct output `The car is as fast as lightning.`, score the model response `The car is as fast as a bullet.` on a scale from 0 to 100, where 100 is the best score. Respond with the integer number only.'));
  assert.ok(!alpacaInput(records[1]!).includes('### Input:'), 'no input block for an empty input');
  assert.equal(judgePrompt(records[2]!, (r) => r.instruction).slice(0, 60), 'Given the input `Name the author of Pride and Prejudice.` an');
});

test('parseScore takes the first integer in 0..100 and ignores the scale', () => {
  assert.equal(parseScore('85'), 85);
  assert.equal(parseScore(' Score: 92\n'), 92);
  assert.equal(parseScore('On a scale from 0 to 100, I give 85.'), 85);
  assert.equal(parseScore('70/100'), 70);
  assert.equal(parseScore('I rate it 60 out of 100'), 60);
  assert.equal(parseScore('0-100: 40'), 40);
  assert.equal(parseScore('150 is too high; 95'), 95);
  assert.equal(parseScore('87.5'), 88);
  assert.equal(parseScore('0'), 0);
  assert.equal(parseScore('100'), 100);
  assert.equal(parseScore('-5 then 7'), 7);
  assert.equal(parseScore('excellent'), null);
  assert.equal(parseScore(''), null);
});

test('URL forms', () => {
  assert.equal(chatCompletionsUrl('http://127.0.0.1:11434'), 'http://127.0.0.1:11434/v1/chat/completions');
  assert.equal(chatCompletionsUrl('http://h:8080/'), 'http://h:8080/v1/chat/completions');
  assert.equal(chatCompletionsUrl('http://h:8080/v1/'), 'http://h:8080/v1/chat/completions');
  assert.equal(chatCompletionsUrl('https://api.x/openai/v1/chat/completions'), 'https://api.x/openai/v1/chat/completions');
  assert.throws(() => chatCompletionsUrl('ftp://h'), /for judge url/);
  assert.throws(() => chatCompletionsUrl('not a url'), /for judge url/);
  assert.throws(() => new OpenAiJudge({ url: base, model: '' }), /for judge model/);
  assert.throws(() => new OpenAiJudge({ url: base, model: 'm', retries: -1 }), /for retries/);
});

test('scores every record through the local server; the request is the OpenAI chat shape', async () => {
  mode = 'derive';
  seen.length = 0;
  const judge = new OpenAiJudge({ url: base, model: 'llama3', apiKey: 'k' });
  const progress: number[] = [];
  const r = await scoreResponses(records, judge, { onScore: (_e, done) => progress.push(done) });
  const expected = records.map((x) => x.model_response.length);
  assert.deepEqual(r.examples.map((e) => e.score), expected);
  assert.equal(r.mean, expected.reduce((a, b) => a + b) / 3);
  assert.equal(r.scored, 3);
  assert.equal(r.unparseable, 0);
  assert.deepEqual(progress, [1, 2, 3]);
  assert.equal(seen[0]!.url, '/v1/chat/completions');
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(seen[0]!.auth, 'Bearer k');
  assert.equal(seen[0]!.body.model, 'llama3');
  assert.equal(seen[0]!.body.temperature, 0);
  assert.deepEqual(seen[0]!.body.messages.map((m) => m.role), ['user']);
});

test('a 500 is retried with backoff, then the answer is used', async () => {
  mode = 'fail-once';
  failures = 0;
  seen.length = 0;
  const judge = new OpenAiJudge({ url: `${base}/v1`, model: 'm', backoffMs: 10 });
  assert.equal(parseScore(await judge.score(judgePrompt(records[2]!))), 'Jane Austen'.length);
  assert.equal(seen.length, 2);
});

test('errors name the URL and the status; 4xx is not retried', async () => {
  mode = 'always-500';
  seen.length = 0;
  const judge = new OpenAiJudge({ url: base, model: 'm', retries: 2, backoffMs: 1 });
  await assert.rejects(judge.score('x'), (e: Error & { code?: string }) =>
    e.code === 'SFTKIT_IO' && e.message.includes(`${base}/v1/chat/completions`) && /after 3 attempt\(s\): HTTP 500 Internal Server Error: \{"error":"overloaded"\}/.test(e.message));
  assert.equal(seen.length, 3);
  mode = '404';
  seen.length = 0;
  await assert.rejects(judge.score('x'), /failed: HTTP 404 Not Found: .*model \\"nope\\" not found/);
  assert.equal(seen.length, 1);
  mode = 'no-choices';
  await assert.rejects(judge.score('x'), /without choices\[0\]\.message\.content/);
});

test('timeouts and refused connections are retried, then reported', async () => {
  mode = 'hang';
  const judge = new OpenAiJudge({ url: base, model: 'm', timeoutMs: 100, retries: 1, backoffMs: 1 });
  await assert.rejects(judge.score('x'), /after 2 attempt\(s\): no answer within 100 ms/);
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const refused = new OpenAiJudge({ url: `http://127.0.0.1:${port}`, model: 'm', retries: 0 });
  await assert.rejects(refused.score('x'), new RegExp(`127\\.0\\.0\\.1:${port}/v1/chat/completions failed after 1 attempt\\(s\\): fetch failed.*ECONNREFUSED`));
});

test('garbage answers are recorded as null and counted', async () => {
  mode = 'garbage';
  const r = await scoreResponses(records.slice(0, 2), new OpenAiJudge({ url: base, model: 'm' }));
  assert.deepEqual(r.examples.map((e) => e.score), [null, null]);
  assert.equal(r.examples[0]!.reply, 'I cannot rate this.');
  assert.equal(r.mean, null);
  assert.equal(r.unparseable, 2);
  // a plugged-in judge (e.g. a local sftkit model) mixing good and bad answers
  const answers = ['90', 'no idea', '70'];
  const mixed = await scoreResponses(records, { score: async () => answers.shift()! });
  assert.deepEqual(mixed.examples.map((e) => e.score), [90, null, 70]);
  assert.equal(mixed.mean, 80);
  assert.equal(mixed.unparseable, 1);
});
