#include "runtime/threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>

namespace tune {

void SetComputeThreads(int64_t threads) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  using SetBlasThreads = void (*)(int);
  // Looked up rather than linked: present only when the BLAS libtorch loaded is OpenBLAS.
  const auto set_blas_threads =
      reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set_blas_threads != nullptr) {
    set_blas_threads(static_cast<int>(threads));
    at::set_num_threads(1);
  } else {
    at::set_num_threads(static_cast<int>(threads));
  }
}

}  // namespace tune
