"""Checks that directories saved by sftkit load in transformers as-is and give the reference logits.

Run by hand:  node --import tsx scripts/gen-fixtures/save-models.ts /tmp/sftkit-saved &&
              ~/.cache/sftkit/pyref/bin/python scripts/gen-fixtures/check-saved-models.py /tmp/sftkit-saved
Writes test/fixtures/models/saved-by-sftkit.json (versions + max |logits difference| per model).
"""
import json
import os
import sys

# scripts/gen-fixtures/safetensors.py would shadow the safetensors package
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
import transformers
from transformers import AutoModelForCausalLM

# issue 22's architectures
NEW = ["tiny-llama3-rope", "tiny-llama-linear", "tiny-llama-dynamic", "tiny-llama-yarn", "tiny-mistral",
       "tiny-qwen2-sliding", "tiny-smollm3", "tiny-phi3", "tiny-gemma3-text", "tiny-gemma2"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "models")


def main(saved):
    results = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__}, "models": {}}
    ok = True
    for name in ["tiny-gpt2", "tiny-llama", "tiny-llama-untied", "tiny-qwen2", "tiny-qwen3", "tinystories-656k",
                 "tiny-gpt2-resized"] + NEW:
        src = os.path.join(ROOT, "tiny-gpt2" if name == "tiny-gpt2-resized" else name)
        # Gemma 2's attention softcapping needs the eager path (SDPA drops it: NEW-ARCHITECTURES.md)
        kw = {"attn_implementation": "eager"} if name == "tiny-gemma2" else {}
        ref_model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, **kw).eval()
        got = AutoModelForCausalLM.from_pretrained(os.path.join(saved, name), dtype=torch.float32, **kw).eval()
        # 12 tokens: past the sliding windows (4) and Phi-3's longrope switch (8) of the issue 22 fixtures
        ids = torch.tensor([[1, 17, 42, 99, 5, 63, 7, 8, 90, 11, 54, 3]])
        with torch.no_grad():
            a = ref_model(input_ids=ids).logits
            b = got(input_ids=ids).logits
        if name == "tiny-gpt2-resized":
            # old rows unchanged; the 2 new rows of the tied head = mean embedding
            emb = ref_model.get_input_embeddings().weight
            new = got.get_input_embeddings().weight
            rows_ok = bool(torch.allclose(new[128:], emb.mean(0, keepdim=True).expand(2, -1), atol=1e-6))
            diff = float((a - b[..., :128]).abs().max())
            results["models"][name] = {"maxAbsLogitsDiff": diff, "vocabSize": got.config.vocab_size, "newRowsAreMean": rows_ok}
            ok = ok and rows_ok and got.config.vocab_size == 130
        else:
            diff = float((a - b).abs().max())
            results["models"][name] = {"maxAbsLogitsDiff": diff}
        ok = ok and diff <= 1e-5
        print(name, results["models"][name])
    results["allMatch"] = ok
    with open(os.path.join(ROOT, "saved-by-sftkit.json"), "w") as f:
        json.dump(results, f, indent=2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(sys.argv[1])
