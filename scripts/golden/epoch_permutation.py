#!/usr/bin/env python3
"""Independent reference for em::data::sample_seed / epoch_permutation (lib/em/data/sampling.cpp): splitmix64
(Vigna's published constants), std::mt19937_64 as the C++ standard specifies it ([rand.predef]: the 10000th output
of a default-seeded engine is 9981545732273789042, checked below), and Fisher-Yates from the top with rejection
sampling (x >= 2^64 mod bound, then x % bound). Prints the goldens pinned in tests/unit/data/test_loader.cpp.

    python3 scripts/golden/epoch_permutation.py
"""
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def sample_seed(seed, epoch, index):
    return splitmix64(splitmix64(splitmix64(seed) ^ (epoch & M64)) ^ (index & M64))


class MT19937_64:
    n, m = 312, 156

    def __init__(self, seed=5489):
        self.mt = [seed & M64]
        for i in range(1, self.n):
            self.mt.append((6364136223846793005 * (self.mt[-1] ^ (self.mt[-1] >> 62)) + i) & M64)
        self.index = self.n

    def __call__(self):
        if self.index >= self.n:
            for i in range(self.n):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % self.n] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[i] = self.mt[(i + self.m) % self.n] ^ xa
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & M64


def uniform_below(rng, bound):
    if bound <= 1:
        return 0
    threshold = (1 << 64) % bound
    while True:
        x = rng()
        if x >= threshold:
            return x % bound


def epoch_permutation(n, seed, epoch):
    order = list(range(n))
    rng = MT19937_64(sample_seed(seed, epoch, -1))
    for i in range(n - 1, 0, -1):
        j = uniform_below(rng, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


if __name__ == "__main__":
    rng = MT19937_64()
    for _ in range(9999):
        rng()
    assert rng() == 9981545732273789042, "mt19937_64 does not match the C++ standard"
    print("sample_seed(7, 1, 2) =", sample_seed(7, 1, 2))
    print("sample_seed(0, 0, 0) =", sample_seed(0, 0, 0))
    print("epoch_permutation(10, 42, 3) =", epoch_permutation(10, 42, 3))
    print("epoch_permutation(10, 42, 0) =", epoch_permutation(10, 42, 0))
