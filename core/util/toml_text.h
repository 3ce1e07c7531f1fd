// TOML documents as tune writes them (the resolved run config that `tune validate` prints, that
// run folders keep and that the registry stores): tables, arrays of tables and values laid out
// as toml++ lays them out, with floats in their shortest exact form (0.003, not toml++'s
// 0.0030000000000000001 with GCC, where it has no std::to_chars for floats). Reading the text
// back gives the same table.
#pragma once

#include <string>

#include <toml++/toml.h>

namespace tune {

std::string TomlText(const toml::table& table);

// One value as TOML writes it: 'text', 16, 16.0, 0.003, true, [ 2, 4 ], { a = 1 }.
std::string TomlValueText(const toml::node& node);

}  // namespace tune
