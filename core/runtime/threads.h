// How many CPU threads a run computes with.
#pragma once

#include <cstdint>

namespace tune {

// Gives a run `threads` CPU threads (0: one per core). With OpenBLAS (Debian's libtorch), the
// matrix products get all of them and libtorch's own intra-op pool gets one: its OpenMP workers
// spin between parallel regions and take the cores from OpenBLAS's threads, which made two-thread
// training 2.7x slower than one on a 2-core machine (bench/README.md). With any other BLAS,
// libtorch gets them all.
void SetComputeThreads(int64_t threads);

}  // namespace tune
