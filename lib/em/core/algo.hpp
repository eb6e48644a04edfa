// The three algorithms (--algo): one enum and its names, shared by every tool and layer.
#pragma once
#include <string>

namespace em {

enum class Algo { classification, segmentation, detection };

Algo parse_algo(const std::string& name);  // throws em::UsageError naming the valid values
std::string algo_name(Algo algo);

}  // namespace em
