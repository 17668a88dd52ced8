#!/usr/bin/env python3
"""Parquet, CSV and TSV data fixtures, written by the tools people make them with (pyarrow, Python's csv module),
with the same records as JSONL, for sftkit's tabular readers and the parity test (same ids and labels as JSONL).

Run by hand (never by CI or at run time); it only needs pyarrow (`pip install pyarrow`, any recent version):

    python3 scripts/gen-fixtures/tabular.py          # rewrites test/fixtures/data/tabular/

Writes (all kilobytes):
- alpaca.jsonl: 24 Alpaca records {instruction, input, output}: 20 from test/fixtures/data/instruction-data.json
  plus 4 hand-written ones with commas, quotes, CR/LF newlines, tabs, non-ASCII text and a null `input` (3 records
  have input null: what a Parquet null reads as);
  alpaca-snappy.parquet (row groups of 5 rows: 5 groups), alpaca-zstd.parquet, alpaca-gzip.parquet,
  alpaca-brotli.parquet (one group each), alpaca.csv (csv module defaults: QUOTE_MINIMAL, CRLF rows, a null is an
  empty cell), alpaca.tsv (csv module with delimiter '\\t').
- chat.jsonl / chat.parquet: {messages: [{role, content}]} as a list<struct<role, content>> column (row groups of 2).
- preference.jsonl / .parquet / .csv: the first 12 records of instruction-data-with-preference-24.json
  {instruction, input, output, rejected, chosen}.
- types.parquet: int64 (safe and beyond 2^53), int32, float, bool, date32, timestamp[ms], binary, list<int64>,
  struct, decimal and nulls, for the value conversion test.
- bad-types.parquet: an Alpaca file whose `output` column is int64 (an error naming the column).
- hf-dataset/: the Hugging Face hub layout, data/train-00000-of-00002.parquet and data/train-00001-of-00002.parquet
  (the alpaca records 0-11 and 12-19), data/validation-00000-of-00001.parquet (20-21), data/test-00000-of-00001.parquet
  (22-23) and a README.md dataset card (not data).
- csv-dataset/: train.csv (alpaca records 0-15), val.tsv (16-19), test.jsonl (20-23): `val` naming, mixed formats.
"""

import csv
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SRC = os.path.join(ROOT, 'test', 'fixtures', 'data')
OUT = os.path.join(SRC, 'tabular')

HAND_WRITTEN = [
    {'instruction': 'Split the list "a, b, c" into items, then say "done".', 'input': None,
     'output': 'Items: a, b, c.\r\nThen: "done".'},
    {'instruction': 'Write two lines about CSV.', 'input': 'Fields may hold "quotes", commas, and\nnewlines.',
     'output': 'A quoted field keeps its commas,\nand a doubled quote "" stands for one.'},
    {'instruction': 'Translate to French: "the café is open"', 'input': None,
     'output': 'Le café est ouvert.\tÇa va ? — «oui»'},
    {'instruction': 'Repeat the input exactly.', 'input': '  leading and trailing spaces  ',
     'output': '  leading and trailing spaces  '},
]

CHATS = [
    [{'role': 'system', 'content': 'You are a concise assistant.'},
     {'role': 'user', 'content': 'What is the capital of France?'},
     {'role': 'assistant', 'content': 'Paris.'}],
    [{'role': 'user', 'content': 'Name two primary colours.'},
     {'role': 'assistant', 'content': 'Red and blue.'},
     {'role': 'user', 'content': 'And a third?'},
     {'role': 'assistant', 'content': 'Yellow.'}],
    [{'role': 'user', 'content': 'Say "hi", with a comma, then a newline.\nOK?'},
     {'role': 'assistant', 'content': 'hi,\nOK.'}],
    [{'role': 'system', 'content': 'Answer in one word.'},
     {'role': 'user', 'content': 'Opposite of hot?'},
     {'role': 'assistant', 'content': 'Cold.'}],
    [{'role': 'user', 'content': '2 + 2 = ?'},
     {'role': 'assistant', 'content': '4'}],
]

ALPACA_SCHEMA = pa.schema([('instruction', pa.string()), ('input', pa.string()), ('output', pa.string())])
CHAT_SCHEMA = pa.schema([('messages', pa.list_(pa.struct([('role', pa.string()), ('content', pa.string())])))])


def write_jsonl(path, rows):
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + '\n')


def write_csv(path, rows, columns, **kw):
    with open(path, 'w', encoding='utf-8', newline='') as f:
        w = csv.DictWriter(f, fieldnames=columns, **kw)
        w.writeheader()
        for r in rows:
            w.writerow({k: ('' if r.get(k) is None else r[k]) for k in columns})


def write_parquet(path, rows, schema, **kw):
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, **kw)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    base = json.load(open(os.path.join(SRC, 'instruction-data.json'), encoding='utf-8'))[:20]
    alpaca = [dict(r) for r in base] + HAND_WRITTEN
    alpaca[2]['input'] = None  # an empty input written as a null
    cols = ['instruction', 'input', 'output']
    p = lambda *names: os.path.join(OUT, *names)

    write_jsonl(p('alpaca.jsonl'), alpaca)
    write_parquet(p('alpaca-snappy.parquet'), alpaca, ALPACA_SCHEMA, compression='snappy', row_group_size=5)
    write_parquet(p('alpaca-zstd.parquet'), alpaca, ALPACA_SCHEMA, compression='zstd')
    write_parquet(p('alpaca-gzip.parquet'), alpaca, ALPACA_SCHEMA, compression='gzip')
    write_parquet(p('alpaca-brotli.parquet'), alpaca, ALPACA_SCHEMA, compression='brotli')
    write_csv(p('alpaca.csv'), alpaca, cols)
    write_csv(p('alpaca.tsv'), alpaca, cols, delimiter='\t')

    chats = [{'messages': m} for m in CHATS]
    write_jsonl(p('chat.jsonl'), chats)
    write_parquet(p('chat.parquet'), chats, CHAT_SCHEMA, compression='snappy', row_group_size=2)

    pref = json.load(open(os.path.join(SRC, 'instruction-data-with-preference-24.json'), encoding='utf-8'))[:12]
    pref_cols = ['instruction', 'input', 'output', 'rejected', 'chosen']
    write_jsonl(p('preference.jsonl'), pref)
    write_parquet(p('preference.parquet'), pref, pa.schema([(c, pa.string()) for c in pref_cols]), compression='zstd')
    write_csv(p('preference.csv'), pref, pref_cols)

    import datetime
    import decimal
    types = pa.table({
        'text': pa.array(['a', None, 'c'], pa.string()),
        'i64': pa.array([1, -(2 ** 40), None], pa.int64()),
        'big': pa.array([2 ** 53 + 1, -(2 ** 62), 7], pa.int64()),
        'i32': pa.array([3, None, -4], pa.int32()),
        'f64': pa.array([0.5, None, -2.25], pa.float64()),
        'flag': pa.array([True, False, None], pa.bool_()),
        'day': pa.array([datetime.date(2024, 2, 29), None, datetime.date(1970, 1, 1)], pa.date32()),
        'when': pa.array([datetime.datetime(2024, 2, 29, 12, 30, 5, 250000), None, None], pa.timestamp('ms')),
        'blob': pa.array([b'hi', None, b''], pa.binary()),
        'ints': pa.array([[1, 2], [], None], pa.list_(pa.int64())),
        'pair': pa.array([{'k': 'x', 'n': 1}, None, {'k': None, 'n': 2}], pa.struct([('k', pa.string()), ('n', pa.int64())])),
        'price': pa.array([decimal.Decimal('1.25'), None, decimal.Decimal('-3.50')], pa.decimal128(9, 2)),
    })
    pq.write_table(types, p('types.parquet'), compression='snappy')
    bad = pa.table({'instruction': ['a', 'b'], 'input': ['', ''], 'output': pa.array([1, 2], pa.int64())})
    pq.write_table(bad, p('bad-types.parquet'))

    os.makedirs(p('hf-dataset', 'data'))
    write_parquet(p('hf-dataset', 'data', 'train-00000-of-00002.parquet'), alpaca[:12], ALPACA_SCHEMA, compression='snappy')
    write_parquet(p('hf-dataset', 'data', 'train-00001-of-00002.parquet'), alpaca[12:20], ALPACA_SCHEMA, compression='snappy')
    write_parquet(p('hf-dataset', 'data', 'validation-00000-of-00001.parquet'), alpaca[20:22], ALPACA_SCHEMA, compression='snappy')
    write_parquet(p('hf-dataset', 'data', 'test-00000-of-00001.parquet'), alpaca[22:], ALPACA_SCHEMA, compression='snappy')
    with open(p('hf-dataset', 'README.md'), 'w', encoding='utf-8') as f:
        f.write('---\nlicense: apache-2.0\n---\n# A tiny Alpaca dataset in the Hugging Face hub layout (sftkit test fixture)\n')

    os.makedirs(p('csv-dataset'))
    write_csv(p('csv-dataset', 'train.csv'), alpaca[:16], cols)
    write_csv(p('csv-dataset', 'val.tsv'), alpaca[16:20], cols, delimiter='\t')
    write_jsonl(p('csv-dataset', 'test.jsonl'), alpaca[20:])

    total = 0
    for dirpath, _, files in os.walk(OUT):
        for name in files:
            total += os.path.getsize(os.path.join(dirpath, name))
    print(f'wrote {OUT} ({total} bytes) with pyarrow {pa.__version__}')


if __name__ == '__main__':
    main()
