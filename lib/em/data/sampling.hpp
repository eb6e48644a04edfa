// The seeded randomness that makes runs reproducible: per-sample seeds and epoch permutations, identical across
// standard libraries, worker counts and resumes (the loader and every augmentation draw from these).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace em::data {

// A well-mixed 64-bit seed for one sample's random transforms (splitmix64 over seed, epoch, index): the same
// (seed, epoch, index) gives the same augmentation whichever worker builds it and after a resume.
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index);

// The order of 0..n-1 for an epoch: Fisher-Yates driven by std::mt19937_64(sample_seed(seed, epoch, -1)), written out
// here because std::shuffle's algorithm differs between standard libraries. Same arguments, same order, anywhere.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// Uniform integer in [0, bound) from an mt19937_64 without std::uniform_int_distribution (implementation-defined):
// rejection sampling, so results are identical across standard libraries.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound);

}  // namespace em::data
