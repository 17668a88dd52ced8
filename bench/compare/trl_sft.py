"""TRL side of bench/compare: SFTTrainer on ch. 7's instruction data, Alpaca prompt style, loss on the completion
(response + EOS) only — the masks sftkit's `alpaca` template and `completion` mask produce.

--mode padded: dynamic padding (TRL's collator) with transformers' group_by_length when available.
--mode packed: TRL's packing (its default strategy) into rows of --max-length.
Throughput is unpadded tokens (the tokens of the examples, not padding) per second of trainer.train().
Prints one JSON object.
"""
import argparse
import inspect
import json
import resource
import tempfile
import time

import torch
import trl
from datasets import Dataset
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from mkl_info import mkl_code_path

PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


def alpaca_prompt(r):
    """The same text as sftkit's alpaca template (src/template/builtin-templates.ts) before the response."""
    text = PREAMBLE + "\n\n### Instruction:\n" + r["instruction"]
    if r.get("input"):
        text += "\n\n### Input:\n" + r["input"]
    return text + "\n\n### Response:\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--mode", choices=["padded", "packed"], default="padded")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    records = json.load(open(a.data))[: a.records]
    ds = Dataset.from_list([{"prompt": alpaca_prompt(r), "completion": r["output"]} for r in records])
    tok = AutoTokenizer.from_pretrained(a.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    config = AutoConfig.from_pretrained(a.model)
    for k in ("attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "summary_first_dropout"):
        if hasattr(config, k):
            setattr(config, k, 0.0)
    model = AutoModelForCausalLM.from_pretrained(a.model, config=config, dtype=torch.float32, attn_implementation="sdpa")
    fields = inspect.signature(SFTConfig.__init__).parameters
    kw = dict(
        output_dir=tempfile.mkdtemp(prefix="sftkit-trl-"),
        per_device_train_batch_size=a.batch_size,
        gradient_accumulation_steps=1,
        num_train_epochs=1,
        learning_rate=a.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1000000,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        seed=42,
        max_length=a.max_length,
        packing=a.mode == "packed",
        completion_only_loss=True,
        disable_tqdm=True,
        # TRL 1.x defaults to bf16 autocast and gradient checkpointing; on this CPU (no bf16 units) bf16 autocast ran
        # ~100x slower (measured: 347 s per step of 8 short examples). The comparison is fp32 without checkpointing
        # on both sides, as sftkit's defaults.
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
    )
    grouped = False
    if a.mode == "padded":
        if "train_sampling_strategy" in fields:  # transformers 5
            kw["train_sampling_strategy"] = "group_by_length"
            grouped = True
        elif "group_by_length" in fields:
            kw["group_by_length"] = True
            grouped = True
    trainer = SFTTrainer(model=model, args=SFTConfig(**kw), train_dataset=ds, processing_class=tok)
    train = trainer.train_dataset
    lengths = train["seq_lengths"] if "seq_lengths" in train.column_names else None
    tokens = sum(sum(s) for s in lengths) if lengths is not None else sum(len(x) for x in train["input_ids"])
    # Trained targets as sftkit counts them (labels after the shift: position 0 of a row is never a target).
    trained = None
    if "labels" in train.column_names:
        trained = sum(sum(1 for l in row[1:] if l != -100) for row in train["labels"])
    elif "completion_mask" in train.column_names:
        trained = sum(sum(m[1:]) for m in train["completion_mask"])
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "unpadded_tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "trained_tokens": trained,
        "steps": result.global_step,
        "train_seconds": seconds,
        "train_loss": result.training_loss,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "mode": a.mode,
        "group_by_length": grouped,
        "loss_type": getattr(trainer.args, "loss_type", None),
        "padding_free": getattr(trainer.args, "padding_free", None),
        "columns": train.column_names,
        "trl": trl.__version__,
        "torch": torch.__version__,
        "mkl_code_path": mkl_code_path(),
    }))


if __name__ == "__main__":
    main()
