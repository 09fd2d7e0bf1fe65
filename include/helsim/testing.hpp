// googletest helpers for seed-driven tests in deterministic mode.
//
//   TEST(MyProtocol, SurvivesEveryInterleaving) {
//     helsim::testing::for_each_seed([](std::uint64_t seed) {
//       helsim::Machine machine{helsim::testing::deterministic(seed)};
//       ... spawn, run, EXPECT ...
//     });
//   }
//
// The body runs once per seed, 0, 1, 2, ... up to the count (the argument, or the environment
// variable HELSIM_SEEDS). It stops at the first seed whose run recorded a gtest failure and
// reports that seed together with the command that replays it alone: HELSIM_SEED=<seed>
// runs only that seed. Header-only; needs gtest.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>

#include <helsim/machine.hpp>

namespace helsim::testing {

// A configuration for deterministic mode.
inline MachineConfig deterministic(std::uint64_t seed, unsigned cpus = 2) {
	MachineConfig config;
	config.cpus = cpus;
	config.mode = Mode::deterministic;
	config.seed = seed;
	return config;
}

namespace detail {
inline bool read_env(const char *name, std::uint64_t &out) {
	const char *text = std::getenv(name);
	if (!text || !*text)
		return false;
	char *end = nullptr;
	unsigned long long value = std::strtoull(text, &end, 0);
	if (*end != '\0') {
		ADD_FAILURE() << name << "=\"" << text << "\" is not a number";
		return false;
	}
	out = value;
	return true;
}

inline std::string replay_command(std::uint64_t seed) {
	const ::testing::TestInfo *info = ::testing::UnitTest::GetInstance()->current_test_info();
	std::string filter = info ? std::string{info->test_suite_name()} + "." + info->name() : "*";
	return "HELSIM_SEED=" + std::to_string(seed) + " <test binary> --gtest_filter='" + filter + "'";
}
} // namespace detail

// The seed loop itself: runs passes(seed) for every seed (see the top of this file) until one
// returns false, reports that seed with its replay command as a gtest failure, and returns
// it; -1 if every seed passed.
inline std::int64_t first_failing_seed(const std::function<bool(std::uint64_t seed)> &passes,
		std::uint64_t count = 20) {
	std::uint64_t only;
	if (detail::read_env("HELSIM_SEED", only)) {
		SCOPED_TRACE("replaying seed " + std::to_string(only));
		return passes(only) ? -1 : static_cast<std::int64_t>(only);
	}
	detail::read_env("HELSIM_SEEDS", count);
	for (std::uint64_t seed = 0; seed < count; ++seed) {
		bool passed;
		{
			SCOPED_TRACE("seed " + std::to_string(seed));
			passed = passes(seed);
		}
		if (!passed) {
			ADD_FAILURE() << "failed with seed " << seed << "; replay it alone with\n  "
						  << detail::replay_command(seed);
			return static_cast<std::int64_t>(seed);
		}
	}
	return -1;
}

// Runs body(seed) for every seed; a seed fails when the body records a gtest failure.
// Returns the failing seed, or -1 if every seed passed.
inline std::int64_t for_each_seed(const std::function<void(std::uint64_t seed)> &body,
		std::uint64_t count = 20) {
	return first_failing_seed(
			[&](std::uint64_t seed) {
				body(seed);
				return !::testing::Test::HasFailure();
			},
			count);
}

} // namespace helsim::testing
