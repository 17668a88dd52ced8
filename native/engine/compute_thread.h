// ComputeThread: the one OS thread on which a model's native work runs. AsyncWorkers execute on libuv's pool
// threads, a different one from call to call; glibc gives each thread its own malloc arena and keeps freed memory in
// it, so activations freed on one pool thread were not reused by the next step on another one (measured: +750 MiB
// peak RSS training GPT-2-124M at B4 T256). A worker's Execute() hands its work to the model's ComputeThread and
// waits, so every tensor of a model is allocated from one arena. Owned by the model's state: no global state.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace sft {

class ComputeThread {
 public:
  ComputeThread() = default;
  ~ComputeThread();  // joins the thread (it is idle: one operation at a time, and run() blocks until done)
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // Runs fn on the thread (started on first use) and blocks the caller until it returned; an exception thrown by
  // fn is rethrown here. Callers are serialised.
  void run(const std::function<void()>& fn);

 private:
  void loop();

  std::mutex call_mu_;  // one run() at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  const std::function<void()>* pending_ = nullptr;
  std::exception_ptr error_;
  bool done_ = false;
  bool stop_ = false;
};

}  // namespace sft
