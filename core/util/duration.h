// Durations as people read them in progress lines.
#pragma once

#include <string>

namespace tune {

// "H:MM:SS" for `seconds` rounded to the nearest second; negative counts as 0.
std::string FormatDuration(double seconds);

}  // namespace tune
