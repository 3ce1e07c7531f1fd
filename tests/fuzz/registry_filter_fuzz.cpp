// Fuzz target for the registry's filter language (Registry::List, `tune adapters ls --filter`,
// and the web view's ?filter=): any text must either parse into a filter that can be evaluated
// on a version, or be refused with a UserError of one short line. Anything else (a crash, a
// sanitizer report, another exception, a stack overflow on deep nesting) is a bug.
//
// With clang and libFuzzer (coverage-guided):
//   CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DTUNE_FUZZ=ON
//   cmake --build build/fuzz --target registry_filter_fuzz
//   build/fuzz/bin/registry_filter_fuzz tests/fuzz/corpus/registry_filter_fuzz -max_len=8192
// With any compiler, ctest runs it for a bounded time through tests/fuzz/fuzz_driver.cpp.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "registry/filter.h"
#include "registry/registry_test_util.h"
#include "util/error.h"

namespace {

void RequireOneShortLine(const tune::UserError& e) {
  const std::string message = e.what();
  if (message.find('\n') != std::string::npos || message.size() > 600) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tune::VersionRecord kRecord = tune::testing::SampleRecord();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const tune::registry_internal::Filter filter = tune::registry_internal::Filter::Parse(text);
    filter.Matches(kRecord);
  } catch (const tune::UserError& e) {
    RequireOneShortLine(e);
  }
  try {
    const auto sort = tune::registry_internal::SortKey::Parse(text);
    tune::registry_internal::SortBefore(sort, kRecord, kRecord);
  } catch (const tune::UserError& e) {
    RequireOneShortLine(e);
  }
  return 0;
}
