// examples/race as a seed-driven test: the broken protocol fails for some seed (found and
// reported by first_failing_seed), the fixed protocol passes every seed.
#include <gtest/gtest.h>

#include <gtest/gtest-spi.h>

#include <cstdint>
#include <string>

#include "../../examples/race/protocol.hpp"
#include <helsim/testing.hpp>

namespace {

TEST(RaceExample, BrokenProtocolFailsForSomeSeed) {
	std::int64_t failing = -1;
	// first_failing_seed reports the failing seed as a gtest failure; expect exactly that.
	EXPECT_NONFATAL_FAILURE(failing = helsim::testing::first_failing_seed(
									[](std::uint64_t seed) {
										return race::run_once(race::Protocol::broken, seed);
									},
									200),
			"HELSIM_SEED=");
	ASSERT_GE(failing, 0);
	// The replay of that one seed fails the same way, and deterministically so.
	EXPECT_FALSE(race::run_once(race::Protocol::broken, static_cast<std::uint64_t>(failing)));
	EXPECT_FALSE(race::run_once(race::Protocol::broken, static_cast<std::uint64_t>(failing)));
}

TEST(RaceExample, FixedProtocolPassesEverySeed) {
	std::int64_t failing = helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				std::string why;
				EXPECT_TRUE(race::run_once(race::Protocol::fixed, seed, &why)) << why;
			},
			200);
	EXPECT_EQ(failing, -1);
}

} // namespace
