// Test/bench surface of the distillation loss (engine/distill_loss.h) on plain typed arrays.
#pragma once

#include <napi.h>

namespace sft {

// distillLoss(hidden, hiddenShape, weight, weightShape, teacherHidden, teacherHiddenShape, teacherWeight,
//             teacherWeightShape, labels, labelsShape, { alpha, temperature, chunkRows, naive, threads })
//   -> Promise<{ lossSum, ceSum, klSum, count, gradHidden, gradWeight }>
Napi::Value distill_loss_js(const Napi::CallbackInfo& info);

}  // namespace sft
