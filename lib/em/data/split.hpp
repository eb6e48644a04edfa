#pragma once
// The one rule for naming a dataset's split (em-eval --split, the trainer's evaluation): every algorithm's dataset
// has train, validation and an optional test split.

#include <string>

#include "em/core/error.hpp"

namespace em::data {

// The split NAME of the dataset in DIR. An unknown name is a usage error (exit 2); a split the dataset lacks
// (present(split) is false) fails naming DIR/NAME (exit 1).
template <class Split, class Present>
const Split& pick_split(const std::string& dir, const std::string& name, const Split& train, const Split& validation,
                        const Split& test, Present present) {
  const Split* s = name == "train" ? &train : name == "validation" ? &validation : name == "test" ? &test : nullptr;
  if (!s) usage_fail("unknown split \"{}\" (expected train, validation or test)", name);
  if (!present(*s)) fail("{}/{}: missing split folder (the dataset has no {} split)", dir, name, name);
  return *s;
}

}  // namespace em::data
