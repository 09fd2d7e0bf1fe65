// include/helsim/testing.hpp: what the environment does to a seed loop (start, count, shards,
// budget, failures, traces of failing seeds), its output, and its errors for bad values.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

namespace ht = helsim::testing;

// Sets the loop's variables for one scope (every other one unset) and restores them after.
class Environment {
public:
	Environment(std::initializer_list<std::pair<const char *, std::string>> values) {
		for (const char *name : kNames) {
			if (const char *old = std::getenv(name))
				saved_[name] = old;
			unsetenv(name);
		}
		for (const auto &[name, value] : values)
			setenv(name, value.c_str(), 1);
	}
	~Environment() {
		for (const char *name : kNames) {
			unsetenv(name);
			if (auto it = saved_.find(name); it != saved_.end())
				setenv(name, it->second.c_str(), 1);
		}
	}

private:
	static constexpr const char *kNames[] = {"HELSIM_SEED", "HELSIM_SEEDS", "HELSIM_SEED_START",
			"HELSIM_SEED_BUDGET", "HELSIM_SHARD", "HELSIM_MAX_FAILURES", "HELSIM_TRACE_FAILING"};
	std::map<std::string, std::string> saved_;
};

// The failures `statement` reports (from any thread), one message each, instead of the test's.
template <typename Statement>
std::vector<std::string> failures_of(Statement &&statement) {
	::testing::TestPartResultArray parts;
	{
		::testing::ScopedFakeTestPartResultReporter
				catcher{::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &parts};
		statement();
	}
	std::vector<std::string> messages;
	for (int i = 0; i < parts.size(); ++i)
		if (parts.GetTestPartResult(i).failed())
			messages.emplace_back(parts.GetTestPartResult(i).message());
	return messages;
}

std::string joined(const std::vector<std::string> &messages) {
	std::string out;
	for (const std::string &m : messages)
		out += m + "\n";
	return out;
}

bool mentions(const std::vector<std::string> &messages, const std::string &text) {
	return joined(messages).find(text) != std::string::npos;
}

std::vector<std::uint64_t> seeds_run(std::uint64_t count = 20) {
	std::vector<std::uint64_t> seen;
	ht::SeedLoopOptions options;
	options.count = count;
	ht::for_each_seed([&](std::uint64_t seed) { seen.push_back(seed); }, options);
	return seen;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t count) {
	std::vector<std::uint64_t> out(count);
	for (std::uint64_t k = 0; k < count; ++k)
		out[k] = first + k;
	return out;
}

TEST(SeedLoop, EachSeedIsJudgedByItsOwnFailures) {
	std::int64_t first = -2, second = -2;
	std::vector<std::uint64_t> second_seeds;
	auto failures = failures_of([&] {
		first = ht::for_each_seed([](std::uint64_t seed) { EXPECT_NE(seed, 2u); }, 5);
		// A correct body in a second loop of the same test, after the first one failed.
		second = ht::for_each_seed(
				[&](std::uint64_t seed) {
					second_seeds.push_back(seed);
					EXPECT_LT(seed, 5u);
				},
				5);
	});
	EXPECT_EQ(first, 2);
	EXPECT_EQ(second, -1) << "a second loop over a correct body blamed a seed";
	EXPECT_EQ(second_seeds, range(0, 5));
	// The body's own failure reaches the test, then the loop's report of the seed.
	ASSERT_EQ(failures.size(), 2u) << joined(failures);
	EXPECT_NE(failures[0].find("(seed) != (2u)"), std::string::npos) << failures[0];
	EXPECT_NE(failures[0].find("seed 2"), std::string::npos) << "the seed as a scoped trace";
	EXPECT_EQ(failures[1].find("Failed\nfailed with seed 2;"), 0u) << failures[1];
}

TEST(SeedLoop, StartCountAndReplay) {
	{
		Environment env{{"HELSIM_SEED_START", "1000"}, {"HELSIM_SEEDS", "4"}};
		EXPECT_EQ(seeds_run(), range(1000, 4));
	}
	{
		Environment env{{"HELSIM_SEED", "77"}, {"HELSIM_SEEDS", "4"}, {"HELSIM_SHARD", "1/2"}};
		EXPECT_EQ(seeds_run(), (std::vector<std::uint64_t>{77})) << "a replay ignores the rest";
	}
}

TEST(SeedLoop, ARandomStartIsPrintedAndReplays) {
	std::vector<std::uint64_t> seen;
	std::string printed;
	{
		Environment env{{"HELSIM_SEED_START", "random"}, {"HELSIM_SEEDS", "3"}};
		::testing::internal::CaptureStdout();
		seen = seeds_run();
		printed = ::testing::internal::GetCapturedStdout();
	}
	ASSERT_EQ(seen.size(), 3u);
	EXPECT_EQ(seen, range(seen[0], 3));
	std::string start = std::to_string(seen[0]);
	EXPECT_NE(printed.find("random start " + start +
					  " (replay the run with HELSIM_SEED_START=" + start + ")"),
			std::string::npos)
			<< printed;
	Environment env{{"HELSIM_SEED_START", start}, {"HELSIM_SEEDS", "3"}};
	EXPECT_EQ(seeds_run(), seen);
}

TEST(SeedLoop, ShardsAreDisjointAndCoverEverySeed) {
	constexpr std::uint64_t kShards = 3;
	std::set<std::uint64_t> all;
	std::size_t total = 0;
	for (std::uint64_t shard = 0; shard < kShards; ++shard) {
		Environment env{{"HELSIM_SEED_START", "1000"}, {"HELSIM_SEEDS", "50"},
				{"HELSIM_SHARD", std::to_string(shard) + "/" + std::to_string(kShards)}};
		std::vector<std::uint64_t> mine = seeds_run();
		EXPECT_FALSE(mine.empty());
		for (std::uint64_t seed : mine)
			EXPECT_EQ(seed % kShards, shard);
		total += mine.size();
		all.insert(mine.begin(), mine.end());
	}
	EXPECT_EQ(total, all.size()) << "two shards ran the same seed";
	EXPECT_EQ(std::vector<std::uint64_t>(all.begin(), all.end()), range(1000, 50));
}

TEST(SeedLoop, AFailingSeedsReplayLineNamesItsShard) {
	Environment env{{"HELSIM_SEEDS", "10"}, {"HELSIM_SHARD", "1/4"}};
	std::int64_t failing = -2;
	auto failures = failures_of(
			[&] { failing = ht::for_each_seed([](std::uint64_t seed) { EXPECT_NE(seed, 5u); }); });
	EXPECT_TRUE(mentions(failures,
			"failed with seed 5 (shard 1/4); replay it alone with\n  "
			"HELSIM_SEED=5 '"))
			<< joined(failures);
	EXPECT_EQ(failing, 5);
}

TEST(SeedLoop, TheReplayCommandRunsAsPrinted) {
	std::string message;
	{
		auto failures = failures_of(
				[] { ht::for_each_seed([](std::uint64_t seed) { EXPECT_NE(seed, 3u); }, 5); });
		ASSERT_EQ(failures.size(), 2u); // the seed's own failure, then the loop's
		message = failures[1];
	}
	std::string binary = std::filesystem::read_symlink("/proc/self/exe").string();
	std::string command = "HELSIM_SEED=3 '" + binary +
			"' --gtest_filter='SeedLoop.TheReplayCommandRunsAsPrinted'";
	ASSERT_NE(message.find("replay it alone with\n  " + command), std::string::npos) << message;
	// Run it as printed, asking the binary only to list what the filter selects.
	std::FILE *pipe = popen((command + " --gtest_list_tests").c_str(), "r");
	ASSERT_NE(pipe, nullptr);
	std::string listed;
	char buffer[256];
	while (std::fgets(buffer, sizeof buffer, pipe))
		listed += buffer;
	EXPECT_EQ(pclose(pipe), 0);
	// gtest_main may print its own first line.
	EXPECT_TRUE(listed.ends_with("\nSeedLoop.\n  TheReplayCommandRunsAsPrinted\n")) << listed;
}

TEST(SeedLoop, GoesOnUntilMaxFailures) {
	std::vector<std::uint64_t> seen;
	auto fails_on_odd = [&](std::uint64_t seed) {
		seen.push_back(seed);
		EXPECT_EQ(seed % 2, 0u);
	};
	{
		Environment env{{"HELSIM_MAX_FAILURES", "0"}};
		std::int64_t first = -2;
		auto failures = failures_of([&] { first = ht::for_each_seed(fails_on_odd, 10); });
		EXPECT_EQ(first, 1);
		EXPECT_EQ(seen, range(0, 10)) << "0 means: never stop early";
		EXPECT_EQ(failures.size(), 10u) << "each of 5 seeds: its failure and the loop's report";
		EXPECT_TRUE(mentions(failures, "failed with seed 9;"));
	}
	seen.clear();
	Environment env{{"HELSIM_MAX_FAILURES", "2"}};
	auto failures = failures_of([&] { ht::for_each_seed(fails_on_odd, 10); });
	EXPECT_EQ(seen, range(0, 4)) << "stops at the second failing seed";
	EXPECT_TRUE(mentions(failures, "failed with seed 3;"));
}

TEST(SeedLoop, ATimeBudgetStopsStartingSeeds) {
	// Each seed takes at least 5 ms of host time, so within a 40 ms budget seeds start at
	// 0, 5, ... 35 ms at the latest: no more than 8, however slow the host is.
	Environment env{{"HELSIM_SEED_BUDGET", "40ms"}};
	std::uint64_t runs = 0;
	::testing::internal::CaptureStdout();
	ht::for_each_seed([&](std::uint64_t) {
		++runs;
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
		while (std::chrono::steady_clock::now() < end) {
		}
	});
	std::string printed = ::testing::internal::GetCapturedStdout();
	EXPECT_GE(runs, 1u);
	EXPECT_LE(runs, 8u);
	EXPECT_NE(printed.find("; time budget spent"), std::string::npos) << printed;
}

TEST(SeedLoop, PrintsProgressAndAOneLineSummary) {
	ht::SeedLoopOptions options;
	options.count = 3;
	options.progress_every = std::chrono::milliseconds(1);
	::testing::internal::CaptureStdout();
	ht::for_each_seed(
			[](std::uint64_t) {
				auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
				while (std::chrono::steady_clock::now() < end) {
				}
			},
			options);
	std::string printed = ::testing::internal::GetCapturedStdout();
	EXPECT_NE(printed.find("helsim: SeedLoop.PrintsProgressAndAOneLineSummary: 1 seeds so far "
						   "(at seed 1), 0 failed, "),
			std::string::npos)
			<< printed;
	std::string summary = printed.substr(printed.rfind("helsim: "));
	EXPECT_EQ(summary.find("helsim: SeedLoop.PrintsProgressAndAOneLineSummary: 3 seeds from 0, 0 "
						   "failed, "),
			0u)
			<< summary;
	EXPECT_NE(summary.find(" seeds/s\n"), std::string::npos) << summary;
}

TEST(SeedLoop, UnderGtestBriefOnlyFailingOrLongLoopsPrintTheirSummary) {
	bool brief = GTEST_FLAG_GET(brief);
	GTEST_FLAG_SET(brief, true);
	::testing::internal::CaptureStdout();
	ht::for_each_seed([](std::uint64_t) {}, 3);
	std::string passing = ::testing::internal::GetCapturedStdout();
	::testing::internal::CaptureStdout();
	auto failures = failures_of(
			[] { ht::for_each_seed([](std::uint64_t seed) { EXPECT_NE(seed, 1u); }, 3); });
	std::string failing = ::testing::internal::GetCapturedStdout();
	GTEST_FLAG_SET(brief, brief);
	EXPECT_EQ(passing, "");
	EXPECT_NE(failing.find(": 2 seeds from 0, 1 failed, "), std::string::npos) << failing;
}

// Every bad value is an error that says what to fix, and no seed runs.
TEST(SeedLoop, BadEnvironmentValuesAreClearErrors) {
	const std::pair<std::pair<const char *, std::string>, std::string> cases[] = {
			{{"HELSIM_SEED", "abc"}, "HELSIM_SEED=\"abc\" is not a seed"},
			{{"HELSIM_SEED", "-1"}, "HELSIM_SEED=\"-1\" is not a seed"},
			{{"HELSIM_SEEDS", "12x"}, "HELSIM_SEEDS=\"12x\" is not a count"},
			{{"HELSIM_SEEDS", "0"}, "runs no seed"},
			{{"HELSIM_SEEDS", "99999999999999999999"}, "is not a count"},
			{{"HELSIM_SEED_START", "soon"}, "neither a seed (a decimal number) nor `random`"},
			{{"HELSIM_SEED_BUDGET", "60"}, "HELSIM_SEED_BUDGET=\"60\" is not a time"},
			{{"HELSIM_SEED_BUDGET", "5 min"}, "as 500ms, 60s, 10m or 1h"},
			{{"HELSIM_SEED_BUDGET", "0s"}, "a positive whole number"},
			{{"HELSIM_SHARD", "3"}, "HELSIM_SHARD=\"3\" is not i/n"},
			{{"HELSIM_SHARD", "1/0"}, "is not i/n"},
			{{"HELSIM_SHARD", "4/4"}, "the shard index must be below 4 (0/4 to 3/4)"},
			{{"HELSIM_MAX_FAILURES", "all"}, "HELSIM_MAX_FAILURES=\"all\" is not a count"},
			{{"HELSIM_TRACE_FAILING", "/proc/helsim-traces"}, "cannot create the directory"},
	};
	for (const auto &[variable, expected] : cases) {
		SCOPED_TRACE(std::string{variable.first} + "=" + variable.second);
		Environment env{variable};
		EXPECT_NE(ht::plan_seeds().error.find(expected), std::string::npos)
				<< ht::plan_seeds().error;
		std::vector<std::uint64_t> seen;
		auto failures = failures_of([&] { seen = seeds_run(); });
		ASSERT_EQ(failures.size(), 1u);
		EXPECT_EQ(failures[0].find("Failed\nhelsim: "), 0u) << failures[0];
		EXPECT_NE(failures[0].find(expected), std::string::npos) << failures[0];
		EXPECT_TRUE(seen.empty()) << "a seed ran although the environment is invalid";
	}
	Environment env{{"HELSIM_SEED_START", "random"}, {"HELSIM_SHARD", "0/2"}};
	EXPECT_NE(ht::plan_seeds().error.find("the shards would overlap"), std::string::npos);
	Environment end{{"HELSIM_SEED_START", "18446744073709551615"}, {"HELSIM_SEEDS", "2"}};
	EXPECT_NE(ht::plan_seeds().error.find("beyond the last seed"), std::string::npos);
}

TEST(SeedLoop, ABadHelsimModeIsAnError) {
	const char *old = std::getenv("HELSIM_MODE");
	std::string saved = old ? old : "";
	for (const char *bad : {"determinstic", "deterministic:", "deterministic:x", "threads:1"}) {
		setenv("HELSIM_MODE", bad, 1);
		EXPECT_THROW(helsim::Machine{}, std::invalid_argument) << bad;
	}
	setenv("HELSIM_MODE", "deterministic:7", 1);
	EXPECT_EQ(helsim::Machine{}.config().seed, 7u);
	if (old)
		setenv("HELSIM_MODE", saved.c_str(), 1);
	else
		unsetenv("HELSIM_MODE");
}

// A machine per seed; the seed loop finds seed 3 wrong and writes the trace of its replay.
TEST(SeedLoop, TracesTheReplayOfEachFailingSeed) {
	std::filesystem::path dir =
			std::filesystem::temp_directory_path() / ("helsim-traces-" + std::to_string(getpid()));
	std::filesystem::remove_all(dir);
	std::map<std::uint64_t, std::vector<std::uint64_t>> hashes;
	std::string message;
	{
		Environment env{{"HELSIM_TRACE_FAILING", dir.string()}, {"HELSIM_SEEDS", "6"}};
		auto failures = failures_of([&] {
			ht::for_each_seed([&](std::uint64_t seed) {
				helsim::Machine machine{ht::deterministic(seed)};
				machine.spawn("worker", [](std::span<const HelHandle>) {
					helYield();
					helNop();
				});
				hashes[seed].push_back(machine.run().trace_hash);
				EXPECT_NE(seed, 3u);
			});
		});
		ASSERT_EQ(failures.size(), 2u) << joined(failures);
		message = failures[1];
	}
	std::string file = (dir / "SeedLoop.TracesTheReplayOfEachFailingSeed-seed-3.json").string();
	EXPECT_NE(message.find("failed with seed 3"), std::string::npos) << message;
	EXPECT_NE(message.find("trace of the replay: " + file), std::string::npos) << message;
	EXPECT_EQ(message.find("the traced replay passed"), std::string::npos) << message;
	ASSERT_EQ(hashes[3].size(), 2u) << "seed 3 ran, then its traced replay";
	EXPECT_EQ(hashes[3][0], hashes[3][1]) << "tracing changed the schedule";
	EXPECT_EQ(hashes[2].size(), 1u) << "passing seeds are not replayed";
	std::ifstream in{file};
	std::string json{std::istreambuf_iterator<char>{in}, {}};
	EXPECT_NE(json.find("\"traceEvents\""), std::string::npos);
	EXPECT_NE(json.find("\"worker\""), std::string::npos) << "the replay's thread is in it";
	EXPECT_EQ(std::distance(std::filesystem::directory_iterator{dir}, {}), 1)
			<< "one file: the failing seed's";
	std::filesystem::remove_all(dir);
}

TEST(SeedLoop, AReplayThatPassesSaysSo) {
	std::filesystem::path dir =
			std::filesystem::temp_directory_path() / ("helsim-flaky-" + std::to_string(getpid()));
	Environment env{{"HELSIM_TRACE_FAILING", dir.string()}, {"HELSIM_SEEDS", "2"}};
	int calls = 0;
	// Fails the first time only: something the seed does not fix.
	auto failures =
			failures_of([&] { ht::for_each_seed([&](std::uint64_t) { EXPECT_NE(calls++, 0); }); });
	EXPECT_TRUE(mentions(failures, "the traced replay passed")) << joined(failures);
	EXPECT_TRUE(mentions(failures, "no trace: the replay constructed no Machine"));
	std::filesystem::remove_all(dir);
}

} // namespace
