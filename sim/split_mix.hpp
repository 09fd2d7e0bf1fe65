// splitmix64: tiny, portable, the same sequence on every platform and standard library. The
// deterministic scheduler, fault injection, and the randomized tests (properties, soak, the
// fuzzer's fallback) all draw from it, so a seed means the same run everywhere.
#pragma once

#include <cstdint>

namespace helsim::sim {

class SplitMix64 {
public:
	explicit SplitMix64(std::uint64_t seed) : state_{seed} {}
	std::uint64_t next() {
		std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		return z ^ (z >> 31);
	}
	// Uniform in [0, n), n > 0 (rejection sampling, no modulo bias).
	std::uint64_t below(std::uint64_t n) {
		// Reject the top partial range so every residue is equally likely.
		std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
		for (;;) {
			std::uint64_t x = next();
			if (x < limit)
				return x % n;
		}
	}

private:
	std::uint64_t state_;
};

} // namespace helsim::sim
