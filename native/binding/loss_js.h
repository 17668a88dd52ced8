// JS test/bench surface of the loss and optimizer kernels, independent of any model:
//   crossEntropy(hidden, hiddenShape, weight, weightShape, labels, labelsShape, { chunkRows, naive, threads })
//     -> Promise<{ lossSum, count, gradHidden, gradWeight }>   (forward + backward of the loss sum)
//   adamwSteps({ params, shapes, grads, decay, lr, beta1, beta2, eps, weightDecay, maxGradNorm, threads })
//     -> Promise<{ params, gradNorms, expAvg, expAvgSq }>   (grads[s][i]: gradient of param i at step s)
#pragma once

#include <napi.h>

namespace sft {

Napi::Value cross_entropy_js(const Napi::CallbackInfo& info);
Napi::Value adamw_steps_js(const Napi::CallbackInfo& info);

}  // namespace sft
