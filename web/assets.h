// The UI's files (web/ui), compiled into the binary by embed_assets.cmake so that `tune serve`
// needs nothing installed beside it.
#pragma once

#include <cstddef>
#include <string_view>

namespace tune {

struct Asset {
  const char* path;  // as requested: /index.html, /app.js
  const char* content_type;
  const char* bytes;
  size_t size;
};

// The asset at `path`, or nullptr.
const Asset* FindAsset(std::string_view path);

}  // namespace tune
