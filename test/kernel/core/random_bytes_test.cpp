// helGetRandomBytes: at most 128 bytes a call, as thor; host entropy in threads mode, a stream
// of the seed in deterministic mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "../../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using helsim::test::run_clean;

TEST(RandomBytes, GivesAtMost128BytesACall) {
	run_clean({}, [] {
		std::array<unsigned char, 300> buffer;
		buffer.fill(0xA5);
		std::size_t actual = 0;
		ASSERT_EQ(helGetRandomBytes(buffer.data(), buffer.size(), &actual), kHelErrNone);
		EXPECT_EQ(actual, 128u);
		for (std::size_t i = 128; i < buffer.size(); ++i)
			ASSERT_EQ(buffer[i], 0xA5) << "byte " << i << " was written";
		// 128 random bytes all equal to the fill pattern: 2^-1024.
		EXPECT_NE(std::count(buffer.begin(), buffer.begin() + 128, 0xA5), 128);
	});
}

TEST(RandomBytes, ZeroBytesIsASuccess) {
	run_clean({}, [] {
		std::size_t actual = 99;
		EXPECT_EQ(helGetRandomBytes(nullptr, 0, &actual), kHelErrNone);
		EXPECT_EQ(actual, 0u);
	});
}

TEST(RandomBytes, ABadBufferIsAFault) {
	run_clean({}, [] {
		std::size_t actual = 0;
		EXPECT_EQ(helGetRandomBytes(reinterpret_cast<void *>(0x10), 16, &actual), kHelErrFault);
	});
}

TEST(RandomBytes, ThreadsModeCallsDiffer) {
	run_clean({}, [] {
		std::array<unsigned char, 64> a{}, b{};
		std::size_t actual = 0;
		ASSERT_EQ(helGetRandomBytes(a.data(), a.size(), &actual), kHelErrNone);
		ASSERT_EQ(helGetRandomBytes(b.data(), b.size(), &actual), kHelErrNone);
		EXPECT_NE(a, b);
	});
}

// The bytes a deterministic run draws, and its schedule hash.
std::pair<std::vector<unsigned char>, std::uint64_t> draw(std::uint64_t seed) {
	std::vector<unsigned char> bytes;
	helsim::Machine machine{helsim::testing::deterministic(seed)};
	for (int k = 0; k < 2; ++k)
		machine.spawn("drawer" + std::to_string(k), [&](std::span<const HelHandle>) {
			for (int round = 0; round < 3; ++round) {
				unsigned char chunk[40];
				std::size_t actual = 0;
				ASSERT_EQ(helGetRandomBytes(chunk, sizeof chunk, &actual), kHelErrNone);
				bytes.insert(bytes.end(), chunk, chunk + actual);
			}
		});
	auto report = machine.run();
	helsim::test::expect_clean(report);
	return {bytes, report.trace_hash};
}

TEST(RandomBytes, DeterministicRunsDrawTheSeedsBytes) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto first = draw(seed);
				EXPECT_EQ(first.first.size(), 240u);
				EXPECT_EQ(draw(seed), first) << "a replay draws other bytes or schedules otherwise";
				EXPECT_NE(draw(seed + 1000).first, first.first);
			},
			8);
}

} // namespace
