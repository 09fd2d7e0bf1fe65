// Where the interpreter's arguments come from: a record's choice bytes, then a generator
// seeded with them (so a short record still yields whole action lists), and the pools of
// interesting values each argument kind draws from.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "sim/split_mix.hpp"

namespace helsim::fuzz {

class Choices {
public:
	explicit Choices(std::span<const std::uint8_t> bytes)
	: bytes_{bytes}, fallback_{fnv1a(bytes)} {}

	std::uint8_t byte() {
		if (next_ < bytes_.size())
			return bytes_[next_++];
		return static_cast<std::uint8_t>(generate());
	}
	std::uint64_t word() {
		// Little-endian, as the dictionary (test/fuzz/hel.dict) spells the constants.
		std::uint64_t w = 0;
		for (int i = 0; i < 8; ++i)
			w |= std::uint64_t{byte()} << (8 * i);
		return w;
	}

	// Lengths at every boundary the kernel checks: empty, a byte, an inline item's limit and
	// one past it, a page and one past it, and sizes no memory has.
	std::uint64_t length() {
		static constexpr std::array<std::uint64_t, 12> kLengths{0, 1, 128, 129, 4096, 4097, 8, 16,
				8192, std::uint64_t{1} << 40, ~std::uint64_t{0}, ~std::uint64_t{0} - 4095};
		std::uint8_t k = byte();
		if (k >= 240)
			return byte();
		return kLengths[k % kLengths.size()];
	}

	// An argument word of no known kind: zero, small, a length, one bit, or anything.
	std::uint64_t any() {
		std::uint8_t k = byte();
		switch (k % 8) {
		case 0: return 0;
		case 1: return byte() % 8;
		case 2: return length();
		case 3: return std::uint64_t{1} << (byte() % 64);
		case 4: return byte() | std::uint64_t{byte()} << 8;
		case 5: return word();
		case 6: return ~std::uint64_t{0};
		default: return byte();
		}
	}

private:
	std::uint64_t generate() { return fallback_.next(); }
	static std::uint64_t fnv1a(std::span<const std::uint8_t> bytes) {
		std::uint64_t hash = 0xcbf29ce484222325u;
		for (std::uint8_t b : bytes)
			hash = hash * 0x100000001b3u ^ b;
		return hash;
	}

	std::span<const std::uint8_t> bytes_;
	std::size_t next_ = 0;
	sim::SplitMix64 fallback_;
};

} // namespace helsim::fuzz
