"""Golden fixtures for LoRA (test/parity/lora.test.ts), built with Python `peft` on the tiny fixture models.

Run by hand, never by CI (after models.py; needs the addon built, for step 2):
    ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/lora.py
1. For tiny-llama (every projection, rank_pattern / alpha_pattern), tiny-gpt2 (Conv1D c_attn, c_proj, c_fc:
   fan_in_fan_out), tiny-qwen2 (PEFT's default targets, rsLoRA) and tiny-phi3 (the fused qkv_proj / gate_up_proj,
   longrope; `--only phi3` regenerates just it): a PEFT LoRA model with random, non-zero A and B,
   saved with save_pretrained into test/fixtures/models/tiny-<name>-lora/ (adapter_config.json,
   adapter_model.safetensors; base_model_name_or_path "../tiny-<name>", relative to the adapter directory), plus
   parity.json: for a fixed right-padded batch with labels, the logits with the adapter, the masked loss sum, the
   gradient of every lora_A / lora_B (after one backward of the loss SUM, base frozen), the logits of
   merge_and_unload(), and a greedy generation.
2. Runs scripts/gen-fixtures/save-adapters.ts (sftkit): loads each base + adapter, trains one step, saves the
   adapter and the merged model, and a new adapter trained one step from sftkit's own init; records sftkit's logits.
3. Loads what sftkit saved with peft (PeftModel.from_pretrained) and transformers (the merged models) and writes the
   largest logits differences to test/fixtures/models/lora-saved-by-sftkit.json.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

# scripts/gen-fixtures/safetensors.py would shadow the safetensors package
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ROOT = os.path.join(REPO, "test", "fixtures", "models")

CASES = {
    "llama": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                      "down_proj"],
                  rank_pattern={"o_proj": 2}, alpha_pattern={"down_proj": 16}),
    "gpt2": dict(r=4, lora_alpha=16, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True),
    "qwen2": dict(r=8, lora_alpha=4, use_rslora=True),  # PEFT's default targets (q_proj, v_proj)
    # issue 22: Phi-3's fused projections are the targets (qkv_proj, gate_up_proj), longrope past its original context
    "phi3": dict(r=4, lora_alpha=8, target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
}


def batch(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    B, T = 2, 10
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    labels = ids.clone()
    ids[1, 7:] = 0
    mask[1, 7:] = 0
    labels[1, 7:] = -100
    labels[:, :3] = -100
    return ids, mask, labels


def masked_loss_sum(logits, labels):
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum"), \
        int((shift_labels != -100).sum())


def rows(t, mask):
    return [[[float(x) for x in t[b, i]] if mask[b, i] else None for i in range(t.shape[1])] for b in range(t.shape[0])]


def peft_model(base_dir, case, seed):
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    cfg = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, init_lora_weights=False, **case)
    model = get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def generate_fixtures(versions, only=None):
    for idx, (name, case) in enumerate(CASES.items()):
        if only is not None and name not in only:
            continue
        base_dir = os.path.join(ROOT, f"tiny-{name}")
        out = os.path.join(ROOT, f"tiny-{name}-lora")
        shutil.rmtree(out, ignore_errors=True)
        model = peft_model(base_dir, case, 3000 + idx)
        vocab = model.config.vocab_size
        ids, mask, labels = batch(4000 + idx, vocab)
        model.zero_grad()
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss, count = masked_loss_sum(logits, labels)
        loss.backward()
        grads = {}
        for n, p in model.named_parameters():
            if p.requires_grad:
                key = n.replace(".default.", ".")  # the file names: base_model.model.<module>.lora_A.weight
                grads[key] = {"shape": list(p.grad.shape), "data": [float(x) for x in p.grad.reshape(-1)]}
            elif p.grad is not None:
                raise SystemExit(f"{name}: frozen {n} got a gradient")
        with torch.no_grad():
            prompt = [1, 17, 42, 99, 5, 63]
            # transformers 5.18's cached Phi-3 generation is wrong at the short->long RoPE switch (models.py): without
            # the cache it is the intended rule, which sftkit implements.
            g = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=8, do_sample=False, eos_token_id=None,
                               pad_token_id=0, use_cache=name != "phi3")
        model.save_pretrained(out)
        for extra in ["README.md"]:
            if os.path.exists(os.path.join(out, extra)):
                os.remove(os.path.join(out, extra))
        with open(os.path.join(out, "adapter_config.json")) as f:
            cfg = json.load(f)
        cfg["base_model_name_or_path"] = f"../tiny-{name}"
        if isinstance(cfg["target_modules"], list):
            cfg["target_modules"] = sorted(cfg["target_modules"])  # peft writes a set: a stable order for the fixture
        with open(os.path.join(out, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with torch.no_grad():
            merged = model.merge_and_unload()
            merged_logits = merged(input_ids=ids, attention_mask=mask).logits
        valid = mask == 1
        record = {
            "versions": versions,
            "shape": list(ids.shape),
            "inputIds": ids.reshape(-1).tolist(),
            "attentionMask": mask.reshape(-1).tolist(),
            "labels": labels.reshape(-1).tolist(),
            "logits": rows(logits.detach(), valid),
            "mergedLogits": rows(merged_logits, valid),
            "lossSum": float(loss),
            "tokens": count,
            "grads": grads,
            "generate": {"prompt": prompt, "maxNewTokens": 8, "output": g[0, len(prompt):].tolist()},
        }
        with open(os.path.join(out, "parity.json"), "w") as f:
            json.dump(record, f)
        print(name, "loss", float(loss), count, "adapters", len(grads), "gen", record["generate"]["output"])


def check_saved(saved, versions):
    results = {"versions": versions, "adapters": {}, "merged": {}}
    ok = True
    for name in CASES:
        base_dir = os.path.join(ROOT, f"tiny-{name}")
        for kind in ["trained", "fresh"]:
            d = os.path.join(saved, f"{name}-{kind}")
            with open(os.path.join(d, "sftkit-logits.json")) as f:
                rec = json.load(f)
            ids = torch.tensor(rec["inputIds"]).reshape(rec["shape"])
            mask = torch.tensor(rec["attentionMask"]).reshape(rec["shape"])
            sft = torch.tensor([[row if row is not None else [0.0] * rec["vocab"] for row in b] for b in rec["logits"]])
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
            model = PeftModel.from_pretrained(base, d).eval()
            with torch.no_grad():
                got = model(input_ids=ids, attention_mask=mask).logits
            valid = (mask == 1).unsqueeze(-1)
            diff = float(((got - sft).abs() * valid).max())
            b_norm = float(sum(p.detach().norm() ** 2 for n, p in model.named_parameters() if "lora_B" in n) ** 0.5)
            results["adapters"][f"{name}-{kind}"] = {"maxAbsLogitsDiff": diff, "loraBNorm": b_norm,
                                                     "modules": sum(1 for n, _ in model.named_modules()
                                                                    if n.endswith("lora_A"))}
            ok = ok and diff <= 1e-5 and b_norm > 0
            if kind == "trained":
                merged = AutoModelForCausalLM.from_pretrained(os.path.join(saved, f"{name}-merged"),
                                                              dtype=torch.float32).eval()
                with torch.no_grad():
                    ref = model.merge_and_unload()(input_ids=ids, attention_mask=mask).logits
                    m = merged(input_ids=ids, attention_mask=mask).logits
                mdiff = float(((m - ref).abs() * valid).max())
                results["merged"][name] = {"maxAbsLogitsDiff": mdiff}
                ok = ok and mdiff <= 1e-5
            print(name, kind, results["adapters"][f"{name}-{kind}"])
    results["allMatch"] = ok
    with open(os.path.join(ROOT, "lora-saved-by-sftkit.json"), "w") as f:
        json.dump(results, f, indent=2)
    return ok


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    # --only a,b: regenerate those golden adapters only (step 1), leaving the others and lora-saved-by-sftkit.json as
    # they are (the saved-by-sftkit check of issue 22's families is scripts/gen-fixtures/check-lora-issue22.py).
    if "--only" in sys.argv:
        generate_fixtures(versions, set(sys.argv[sys.argv.index("--only") + 1].split(",")))
        return
    generate_fixtures(versions)
    saved = tempfile.mkdtemp(prefix="sftkit-lora-saved-")
    subprocess.run(["node", "--import", "tsx", os.path.join(HERE, "save-adapters.ts"), saved], cwd=REPO, check=True)
    ok = check_saved(saved, versions)
    shutil.rmtree(saved, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
