// include/helsim/testing.hpp: seed loops, the first failing seed, replay of one seed.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

// Two fibers each append their id to a shared log after a yield: the order depends on the
// schedule, hence on the seed.
std::vector<int> racy_order(std::uint64_t seed) {
	helsim::Machine machine{helsim::testing::deterministic(seed)};
	std::vector<int> order;
	for (int id = 0; id < 2; ++id)
		machine.spawn("racer" + std::to_string(id), [&order, id](std::span<const HelHandle>) {
			helYield();
			order.push_back(id);
		});
	EXPECT_FALSE(machine.run().stuck);
	return order;
}

TEST(Testing, RunsEverySeedWhenAllPass) {
	std::vector<std::uint64_t> seen;
	EXPECT_EQ(helsim::testing::for_each_seed([&](std::uint64_t seed) { seen.push_back(seed); }, 7),
			-1);
	EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(Testing, StopsAtTheFirstFailingSeedAndNamesIt) {
	// A "protocol" that is wrong only when racer 1 finishes first: some seed finds it.
	std::int64_t failing = -2;
	std::uint64_t runs = 0;
	EXPECT_NONFATAL_FAILURE(
			{
				failing = helsim::testing::first_failing_seed(
						[&](std::uint64_t seed) {
							++runs;
							return racy_order(seed).front() == 0;
						},
						64);
			},
			"replay it alone with");
	ASSERT_GE(failing, 0) << "no seed out of 64 ran racer 1 first";
	EXPECT_EQ(runs, static_cast<std::uint64_t>(failing) + 1) << "it must stop at the failing seed";
	// Replaying the seed reproduces the same interleaving, every time.
	EXPECT_EQ(racy_order(static_cast<std::uint64_t>(failing)).front(), 1);
	EXPECT_EQ(racy_order(static_cast<std::uint64_t>(failing)),
			racy_order(static_cast<std::uint64_t>(failing)));
}

TEST(Testing, ForEachSeedPassesWhenTheBodyDoes) {
	std::uint64_t runs = 0;
	EXPECT_EQ(helsim::testing::for_each_seed(
					  [&](std::uint64_t seed) {
						  ++runs;
						  EXPECT_EQ(racy_order(seed).size(), 2u);
					  },
					  10),
			-1);
	EXPECT_EQ(runs, 10u);
}

TEST(Testing, HelsimSeedReplaysOneSeed) {
	setenv("HELSIM_SEED", "5", 1);
	std::vector<std::uint64_t> seen;
	helsim::testing::for_each_seed([&](std::uint64_t seed) { seen.push_back(seed); });
	unsetenv("HELSIM_SEED");
	EXPECT_EQ(seen, (std::vector<std::uint64_t>{5}));
}

TEST(Testing, HelsimSeedsSetsTheCount) {
	setenv("HELSIM_SEEDS", "3", 1);
	std::uint64_t runs = 0;
	helsim::testing::for_each_seed([&](std::uint64_t) { ++runs; }, 50);
	unsetenv("HELSIM_SEEDS");
	EXPECT_EQ(runs, 3u);
}

} // namespace
