#include "em/core/algo.hpp"

#include "em/core/error.hpp"

namespace em {

Algo parse_algo(const std::string& name) {
  if (name == "classification") return Algo::classification;
  if (name == "segmentation") return Algo::segmentation;
  if (name == "detection") return Algo::detection;
  usage_fail("--algo: unknown algorithm '{}' (expected classification, segmentation or detection)", name);
}

std::string algo_name(Algo algo) {
  switch (algo) {
    case Algo::classification: return "classification";
    case Algo::segmentation: return "segmentation";
    case Algo::detection: return "detection";
  }
  return "?";
}

}  // namespace em
