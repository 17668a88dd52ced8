// Batch validation and conversion (see model_batch.h). Runs on the worker thread, on the pinned typed arrays.
#include "model_batch.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "device.h"
#include "errors.h"

namespace sft {
namespace {

std::string at_pos(const char* what, int64_t b, int64_t t) {
  return std::string(what) + "[" + std::to_string(b) + ", " + std::to_string(t) + "]";
}

void check_2d(const at::Tensor& x, int64_t B, int64_t T, at::ScalarType st, const char* name, const char* type) {
  if (x.scalar_type() != st) throw_bad_argument(std::string(name) + " must be " + type);
  if (x.dim() != 2 || x.size(0) != B || x.size(1) != T) {
    throw_bad_argument(std::string(name) + " must have shape [" + std::to_string(B) + ", " + std::to_string(T) + "]");
  }
}

// Builds the kVarlen buckets of `seqs` (flat start, length) over `n` tokens. Sequences are taken longest first; a
// bucket takes the next one while its padded attention work (count x longest^2) stays within twice the work of its
// sequences alone (sum of length^2), so a few batched SDPA calls cover any mix of lengths. Measured (torch 2.13,
// 2 threads, fwd + bwd of one GPT-2 attention layer over a packed row of 16 instruction documents, 1024 tokens): a
// dense block-diagonal mask 163 ms, one SDPA per document 29 ms, one bucket 25 ms.
void plan_varlen(AttentionPlan& plan, std::vector<std::pair<int64_t, int64_t>> seqs, int64_t n, const at::Device& dev) {
  plan.kind = AttentionPlan::Kind::kVarlen;
  plan.buckets.clear();
  std::stable_sort(seqs.begin(), seqs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  size_t i = 0;
  while (i < seqs.size()) {
    const int64_t len = seqs[i].second;
    size_t j = i;
    double work = 0;
    while (j < seqs.size()) {
      const double l = static_cast<double>(seqs[j].second);
      if (j > i && static_cast<double>(j - i + 1) * len * len > 2.0 * (work + l * l)) break;
      work += l * l;
      ++j;
    }
    VarlenBucket bk;
    bk.seqs = static_cast<int64_t>(j - i);
    bk.len = len;
    int64_t count = 0;
    for (size_t k = i; k < j; ++k) count += seqs[k].second;
    at::Tensor tokens = at::empty({count}, at::TensorOptions().dtype(at::kLong));
    at::Tensor slots = at::empty({count}, at::TensorOptions().dtype(at::kLong));
    int64_t* tk = tokens.data_ptr<int64_t>();
    int64_t* sl = slots.data_ptr<int64_t>();
    int64_t c = 0;
    for (size_t k = i; k < j; ++k) {
      for (int64_t t = 0; t < seqs[k].second; ++t, ++c) {
        tk[c] = seqs[k].first + t;
        sl[c] = static_cast<int64_t>(k - i) * len + t;
      }
    }
    bk.identity = i == 0 && j == seqs.size() && count == n && count == bk.seqs * len;
    for (int64_t k = 0; bk.identity && k < count; ++k) bk.identity = tk[k] == k;
    bk.tokens = to_device(tokens, dev);
    bk.slots = to_device(slots, dev);
    plan.buckets.push_back(std::move(bk));
    i = j;
  }
}

}  // namespace

PreparedBatch prepare_batch(const CausalLM& model, const BatchInput& in, bool trim) {
  const int64_t B = in.rows, T = in.cols, V = model.spec().vocab_size;
  if (B <= 0 || T <= 0) throw_bad_argument("batch shape must be [B, T] with B > 0 and T > 0");
  check_2d(in.input_ids, B, T, at::kInt, "inputIds", "an Int32Array");
  const int32_t* ids = in.input_ids.data_ptr<int32_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw_bad_argument(at_pos("inputIds", i / T, i % T) + " = " + std::to_string(ids[i]) +
                         " is outside the model vocabulary [0, " + std::to_string(V) +
                         ") (does the tokenizer match the model?)");
    }
  }
  const int32_t* labels = nullptr;
  if (in.labels.defined()) {
    check_2d(in.labels, B, T, at::kInt, "labels", "an Int32Array");
    labels = in.labels.data_ptr<int32_t>();
    for (int64_t i = 0; i < B * T; ++i) {
      if (labels[i] != kIgnoreIndex && (labels[i] < 0 || labels[i] >= V)) {
        throw_bad_argument(at_pos("labels", i / T, i % T) + " = " + std::to_string(labels[i]) +
                           " is neither -100 nor inside the model vocabulary [0, " + std::to_string(V) + ")");
      }
    }
  }
  if (in.attention_mask.defined() && in.position_ids.defined()) {
    throw_bad_argument("give either attentionMask (padded rows) or positionIds + docLengths (packed rows), not both");
  }
  const int64_t max_pos = model.learned_positions() ? model.spec().max_positions : INT64_MAX;

  PreparedBatch out;
  int64_t used = T;  // columns kept
  std::vector<std::pair<int64_t, int64_t>> seqs;  // packed rows: (flat start, length) of documents and padding
  if (in.position_ids.defined()) {
    check_2d(in.position_ids, B, T, at::kInt, "positionIds", "an Int32Array");
    if (static_cast<int64_t>(in.doc_lengths.size()) != B) {
      throw_bad_argument("docLengths must hold one array of document lengths per row (" + std::to_string(B) + ")");
    }
    const int32_t* pos = in.position_ids.data_ptr<int32_t>();
    for (int64_t b = 0; b < B; ++b) {
      int64_t start = 0;
      for (int64_t len : in.doc_lengths[b]) {
        if (len <= 0) throw_bad_argument("docLengths[" + std::to_string(b) + "] must hold positive lengths");
        if (start + len > T) throw_bad_argument("docLengths[" + std::to_string(b) + "] sums past the row length " + std::to_string(T));
        for (int64_t i = 0; i < len; ++i) {
          if (pos[b * T + start + i] != i) {
            throw_bad_argument(at_pos("positionIds", b, start + i) + " = " + std::to_string(pos[b * T + start + i]) +
                               ", expected " + std::to_string(i) + " (positions restart at 0 in each document)");
          }
        }
        if (labels && start > 0 && labels[b * T + start] != kIgnoreIndex) {
          // The last token of the previous document would be trained to predict this one.
          throw_bad_argument(at_pos("labels", b, start) + " must be -100: it starts a packed document");
        }
        seqs.emplace_back(b * T + start, len);
        start += len;
      }
      if (start < T) {
        // Trailing padding: its own segment, must carry no label.
        for (int64_t t = start; t < T; ++t) {
          if (labels && labels[b * T + t] != kIgnoreIndex) throw_bad_argument(at_pos("labels", b, t) + " must be -100 (padding after the last document)");
        }
        seqs.emplace_back(b * T + start, T - start);
      }
    }
    for (int64_t i = 0; i < B * T; ++i) {
      if (pos[i] < 0 || pos[i] >= max_pos) {
        throw_bad_argument(at_pos("positionIds", i / T, i % T) + " = " + std::to_string(pos[i]) + " is outside [0, " +
                           std::to_string(max_pos) + ")");
      }
    }
    out.pos = in.position_ids.to(at::kLong);
  } else {
    if (!in.doc_lengths.empty()) throw_bad_argument("docLengths needs positionIds");
    out.plan.kind = AttentionPlan::Kind::kCausal;
    if (in.attention_mask.defined()) {
      check_2d(in.attention_mask, B, T, at::kByte, "attentionMask", "a Uint8Array");
      const uint8_t* m = in.attention_mask.data_ptr<uint8_t>();
      int64_t longest = 0;
      for (int64_t b = 0; b < B; ++b) {
        int64_t n = 0;
        while (n < T && m[b * T + n] == 1) ++n;
        for (int64_t t = n; t < T; ++t) {
          if (m[b * T + t] != 0) {
            throw_bad_argument(at_pos("attentionMask", b, t) + " = " + std::to_string(m[b * T + t]) +
                               ": the mask must be right padding (1 ... 1 0 ... 0)");
          }
          if (labels && labels[b * T + t] != kIgnoreIndex) throw_bad_argument(at_pos("labels", b, t) + " must be -100 (padding)");
        }
        longest = std::max(longest, n);
      }
      if (trim) used = std::max<int64_t>(longest, 1);
    }
    if (used > max_pos) {
      throw_bad_argument("sequence length " + std::to_string(used) + " exceeds the model's " + std::to_string(max_pos) + " positions");
    }
    out.pos = at::arange(used, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({B, used});
  }
  const at::Device dev = model.options().device;
  if (!seqs.empty()) plan_varlen(out.plan, std::move(seqs), B * T, dev);
  out.cols = used;
  // On CUDA through pinned host memory with non-blocking copies (to_device).
  out.ids = to_device(in.input_ids.narrow(1, 0, used).to(at::kLong), dev);
  out.pos = to_device(out.pos.narrow(1, 0, used).contiguous(), dev);
  if (labels) out.labels = to_device(in.labels.narrow(1, 0, used).to(at::kLong), dev);
  return out;
}

}  // namespace sft
