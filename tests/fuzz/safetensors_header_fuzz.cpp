// libFuzzer target for safetensors::ParseHeader: any input must either parse into a header whose
// tensors lie inside the input, or be refused with a one-line UserError. Anything else (a crash,
// a sanitizer report, another exception, a huge allocation) is a bug.
//
// With clang and libFuzzer (coverage-guided):
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DTUNE_FUZZ=ON
//   cmake --build build/fuzz --target safetensors_header_fuzz
//   build/fuzz/bin/safetensors_header_fuzz tests/fuzz/corpus/safetensors_header_fuzz -max_len=4096
// With any compiler, ctest runs it for a bounded time through tests/fuzz/fuzz_driver.cpp.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "safetensors/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const tune::safetensors::Header header = tune::safetensors::ParseHeader(bytes, "fuzz");
    uint64_t covered = 0;
    for (const tune::safetensors::TensorInfo& info : header.tensors) {
      // The contract ParseHeader promises: sorted, contiguous, exactly covering the data buffer.
      if (info.offset_bytes != covered) std::abort();
      covered += info.size_bytes;
    }
    if (header.data_offset_bytes + covered != size) std::abort();
  } catch (const tune::UserError& e) {
    const std::string message = e.what();
    if (message.rfind("fuzz: ", 0) != 0 || message.find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
