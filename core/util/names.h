// The grammar of names a user gives things: adapters, aliases, plugins.
#pragma once

#include <string_view>

namespace tune {

// [a-z0-9][a-z0-9._-]{0,63}: safe in file names, URLs and references like NAME@ALIAS.
inline bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

// [a-z][a-z0-9_]{0,63}: an option a plugin declares, written as a bare TOML key.
inline bool IsValidOptionName(std::string_view name) {
  if (name.empty() || name.size() > 64 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace tune
