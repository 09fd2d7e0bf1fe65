// googletest helpers for seed-driven tests in deterministic mode.
//
//   TEST(MyProtocol, SurvivesEveryInterleaving) {
//     helsim::testing::for_each_seed([](std::uint64_t seed) {
//       helsim::Machine machine{helsim::testing::deterministic(seed)};
//       ... spawn, run, EXPECT ...
//     });
//   }
//
// The body runs once per seed; a seed fails when its own run records a gtest failure. The
// loop stops at the first failing seed and reports it with a command that replays it alone.
// The environment steers the loop (docs/testing.md, "Seed loops"):
//   HELSIM_SEEDS=N            run N seeds (default: the loop's count)
//   HELSIM_SEED_START=S       start at seed S instead of 0; `random` picks S and prints it
//   HELSIM_SEED_BUDGET=60s    stop starting seeds after that long (ms, s, m, h); without
//                             HELSIM_SEEDS the count is then unbounded
//   HELSIM_SHARD=i/n          run only the seeds s with s % n == i (for job arrays)
//   HELSIM_MAX_FAILURES=N     go on until N seeds failed (0: never stop early; default 1)
//   HELSIM_TRACE_FAILING=dir  replay each failing seed once more, traced, into dir
//   HELSIM_SEED=S             replay seed S alone (the others are then ignored)
// A value the loop cannot use fails the test with a message that says what to fix; no seed
// runs. Header-only; needs gtest.
#pragma once

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>

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

// What the code asks of a loop; the environment overrides each field.
struct SeedLoopOptions {
	std::uint64_t count = 20;  // HELSIM_SEEDS
	std::string trace_failing; // HELSIM_TRACE_FAILING: a directory, or empty for none
	// A progress line this often while the loop runs; 0: never.
	std::chrono::milliseconds progress_every{5000};
};

// Which seeds a loop runs, as the environment and the options decide.
struct SeedPlan {
	std::optional<std::uint64_t> replay; // HELSIM_SEED: this seed alone
	std::uint64_t start = 0;
	bool random_start = false;
	std::optional<std::uint64_t> count; // seeds [start, start + count); none: until the budget
	std::uint64_t shard = 0, shards = 1;
	std::chrono::milliseconds budget{0}; // 0: none
	std::uint64_t max_failures = 1;      // 0: never stop early
	std::string trace_failing;
	std::string error; // not empty: the environment is invalid, and no seed may run

	bool in_shard(std::uint64_t seed) const { return seed % shards == shard; }
};

namespace detail {

// A decimal number that fits 64 bits, nothing else (no sign, no spaces, no suffix).
inline std::optional<std::uint64_t> parse_number(std::string_view text) {
	std::uint64_t value = 0;
	auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (text.empty() || error != std::errc{} || end != text.data() + text.size())
		return std::nullopt;
	return value;
}

// "60s", "500ms", "10m", "1h".
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
	std::size_t digits = 0;
	while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
		++digits;
	auto number = parse_number(text.substr(0, digits));
	std::string_view unit = text.substr(digits);
	std::uint64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : 0;
	if (unit == "h")
		scale = 3'600'000;
	if (!number || !scale || *number > std::numeric_limits<std::int64_t>::max() / scale)
		return std::nullopt;
	return std::chrono::milliseconds(*number * scale);
}

inline std::string quoted(std::string_view name, std::string_view value) {
	return std::string{name} + "=\"" + std::string{value} + "\"";
}

// The environment variable, or nullptr when unset or empty.
inline const char *env(const char *name) {
	const char *text = std::getenv(name);
	return text && *text ? text : nullptr;
}

// A directory the traces can be written to: created if missing, then probed with a file.
inline std::string check_trace_directory(const std::string &dir) {
	std::error_code error;
	std::filesystem::create_directories(dir, error);
	if (error)
		return "cannot create the directory: " + error.message();
	std::string probe = dir + "/.helsim-probe-" + std::to_string(getpid());
	if (!std::ofstream{probe})
		return "cannot create a file in it";
	std::filesystem::remove(probe, error);
	return {};
}

} // namespace detail

// Reads the plan from the environment over `options`. Every problem lands in `error`.
inline SeedPlan plan_seeds(const SeedLoopOptions &options = {}) {
	SeedPlan plan;
	plan.count = options.count;
	plan.trace_failing = options.trace_failing;
	auto fail = [&](std::string message) {
		if (plan.error.empty())
			plan.error = std::move(message);
	};
	auto number = [&](const char *name, const char *what) -> std::optional<std::uint64_t> {
		const char *text = detail::env(name);
		if (!text)
			return std::nullopt;
		auto value = detail::parse_number(text);
		if (!value)
			fail(detail::quoted(name, text) + " is not " + what);
		return value;
	};

	plan.replay = number("HELSIM_SEED", "a seed (a decimal number below 2^64)");
	if (auto count = number("HELSIM_SEEDS", "a count of seeds (a decimal number)")) {
		if (*count == 0)
			fail("HELSIM_SEEDS=\"0\" runs no seed; ask for at least 1");
		plan.count = *count;
	}
	if (const char *text = detail::env("HELSIM_SEED_START")) {
		if (std::string_view{text} == "random") {
			plan.random_start = true;
			std::random_device device;
			plan.start = (std::uint64_t{device()} << 32) | device();
		} else if (auto start = detail::parse_number(text)) {
			plan.start = *start;
		} else {
			fail(detail::quoted("HELSIM_SEED_START", text) +
					" is neither a seed (a decimal number) nor `random`");
		}
	}
	if (const char *text = detail::env("HELSIM_SEED_BUDGET")) {
		if (auto budget = detail::parse_duration(text); budget && budget->count() > 0) {
			plan.budget = *budget;
			if (!detail::env("HELSIM_SEEDS"))
				plan.count.reset();
		} else {
			fail(detail::quoted("HELSIM_SEED_BUDGET", text) +
					" is not a time: a positive whole number with a unit, as 500ms, 60s, 10m "
					"or 1h");
		}
	}
	if (const char *text = detail::env("HELSIM_SHARD")) {
		std::string_view value{text};
		std::size_t slash = value.find('/');
		auto index = detail::parse_number(value.substr(0, slash));
		auto shards = slash == std::string_view::npos
				? std::nullopt
				: detail::parse_number(value.substr(slash + 1));
		if (!index || !shards || *shards == 0)
			fail(detail::quoted("HELSIM_SHARD", text) +
					" is not i/n (shard i of n, counted from 0: 0/4, 1/4, 2/4, 3/4)");
		else if (*index >= *shards)
			fail(detail::quoted("HELSIM_SHARD", text) + ": the shard index must be below " +
					std::to_string(*shards) + " (0/" + std::to_string(*shards) + " to " +
					std::to_string(*shards - 1) + "/" + std::to_string(*shards) + ")");
		else {
			plan.shard = *index;
			plan.shards = *shards;
		}
		if (plan.random_start)
			fail("HELSIM_SEED_START=\"random\" with HELSIM_SHARD: each shard would pick its own "
				 "start, and the shards would overlap; give every shard the same numeric start");
	}
	if (auto failures = number("HELSIM_MAX_FAILURES", "a count (a decimal number; 0: no limit)"))
		plan.max_failures = *failures;
	if (const char *dir = detail::env("HELSIM_TRACE_FAILING"))
		plan.trace_failing = dir;
	if (!plan.trace_failing.empty())
		if (std::string why = detail::check_trace_directory(plan.trace_failing); !why.empty())
			fail(detail::quoted("HELSIM_TRACE_FAILING", plan.trace_failing) + ": " + why +
					"; name a directory the tests can write to");
	if (plan.count && *plan.count > std::numeric_limits<std::uint64_t>::max() - plan.start)
		fail("HELSIM_SEED_START + HELSIM_SEEDS is beyond the last seed (2^64 - 1)");
	return plan;
}

namespace detail {

// Runs `body` with every gtest result it reports caught (from any thread), then reports the
// failures again where the loop runs: the seed is judged by its own failures, and they still
// reach the test (or an enclosing EXPECT_NONFATAL_FAILURE). Returns whether any failed.
template <typename Body>
bool failed_in(Body &&body) {
	::testing::TestPartResultArray parts;
	{
		::testing::ScopedFakeTestPartResultReporter
				catcher{::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &parts};
		body();
	}
	bool failed = false;
	for (int i = 0; i < parts.size(); ++i) {
		const ::testing::TestPartResult &part = parts.GetTestPartResult(i);
		if (!part.failed())
			continue;
		failed = true;
		ADD_FAILURE_AT(part.file_name() ? part.file_name() : "unknown file", part.line_number())
				<< part.message();
	}
	return failed;
}

inline std::string test_name() {
	const ::testing::TestInfo *info = ::testing::UnitTest::GetInstance()->current_test_info();
	return info ? std::string{info->test_suite_name()} + "." + info->name() : "";
}

inline std::string shell_quoted(const std::string &text) {
	std::string out = "'";
	for (char c : text)
		out += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
	return out + "'";
}

// The command that reruns this test with one seed: the real binary and the test's filter.
inline std::string replay_command(std::uint64_t seed) {
	std::string binary = "<test binary>";
	std::error_code error;
	if (auto path = std::filesystem::read_symlink("/proc/self/exe", error); !error)
		binary = path.string();
	std::string command = "HELSIM_SEED=" + std::to_string(seed) + " " + shell_quoted(binary);
	if (std::string name = test_name(); !name.empty())
		command += " --gtest_filter=" + shell_quoted(name);
	return command;
}

inline double seconds(std::chrono::steady_clock::duration d) {
	return std::chrono::duration<double>(d).count();
}

// Runs one seed; `label` names it in gtest's scoped trace. Returns whether it passed.
using RunSeed = std::function<bool(std::uint64_t seed, const std::string &label)>;

// Runs the seed once more with a TraceCapture alive, every gtest failure swallowed, and says
// what it wrote.
inline std::string trace_replay(const RunSeed &run, std::uint64_t seed, const std::string &dir) {
	std::string name = test_name().empty() ? "seed-loop" : test_name();
	std::replace(name.begin(), name.end(), '/', '_');
	std::string prefix = dir + "/" + name + "-seed-" + std::to_string(seed);
	bool passed;
	TraceCapture capture{prefix};
	::testing::TestPartResultArray swallowed;
	{
		::testing::ScopedFakeTestPartResultReporter quiet{
				::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &swallowed};
		passed = run(seed, "traced replay of seed " + std::to_string(seed));
	}
	for (int i = 0; i < swallowed.size(); ++i)
		passed = passed && !swallowed.GetTestPartResult(i).failed();
	std::string out;
	for (const std::string &file : capture.files())
		out += "\n  trace of the replay: " + file;
	for (const std::string &error : capture.errors())
		out += "\n  trace not written: " + error;
	if (capture.machines() == 0)
		out += "\n  no trace: the replay constructed no Machine";
	if (passed)
		out += "\n  the traced replay passed: this failure depends on something the seed does "
			   "not fix (host threads, timing, state shared across seeds)";
	return out;
}

// The seed loop behind first_failing_seed and for_each_seed.
inline std::int64_t run_seeds(const RunSeed &run, const SeedLoopOptions &options) {
	SeedPlan plan = plan_seeds(options);
	if (!plan.error.empty()) {
		ADD_FAILURE() << "helsim: " << plan.error;
		return -1;
	}
	std::string where = plan.shards > 1
			? " (shard " + std::to_string(plan.shard) + "/" + std::to_string(plan.shards) + ")"
			: "";
	auto report_failure = [&](std::uint64_t seed) {
		std::string trace =
				plan.trace_failing.empty() ? "" : trace_replay(run, seed, plan.trace_failing);
		ADD_FAILURE() << "failed with seed " << seed << where << "; replay it alone with\n  "
					  << replay_command(seed) << trace;
	};
	if (plan.replay) {
		if (run(*plan.replay, "replaying seed " + std::to_string(*plan.replay)))
			return -1;
		report_failure(*plan.replay);
		return static_cast<std::int64_t>(*plan.replay);
	}

	using Clock = std::chrono::steady_clock;
	const Clock::time_point begin = Clock::now();
	const bool progress = options.progress_every.count() > 0;
	Clock::time_point next_progress = begin + options.progress_every;
	std::string name = test_name().empty() ? "seed loop" : test_name();
	if (plan.random_start)
		std::printf("helsim: %s: random start %llu (replay the run with HELSIM_SEED_START=%llu)\n",
				name.c_str(), static_cast<unsigned long long>(plan.start),
				static_cast<unsigned long long>(plan.start));
	std::uint64_t ran = 0, failed = 0;
	std::int64_t first_failure = -1;
	bool budget_spent = false;
	std::uint64_t seed = plan.start;
	for (std::uint64_t offset = 0; !plan.count || offset < *plan.count; ++offset, ++seed) {
		if (!plan.in_shard(seed))
			continue;
		Clock::time_point now = Clock::now();
		if (plan.budget.count() && ran > 0 && now - begin >= plan.budget) {
			budget_spent = true;
			break;
		}
		if (progress && now >= next_progress) {
			std::printf("helsim: %s: %llu seeds so far (at seed %llu), %llu failed, %.1f s\n",
					name.c_str(), static_cast<unsigned long long>(ran),
					static_cast<unsigned long long>(seed), static_cast<unsigned long long>(failed),
					seconds(now - begin));
			std::fflush(stdout);
			next_progress = now + options.progress_every;
		}
		bool passed = run(seed, "seed " + std::to_string(seed) + where);
		++ran;
		if (!passed) {
			if (first_failure < 0)
				first_failure = static_cast<std::int64_t>(seed);
			++failed;
			report_failure(seed);
			if (plan.max_failures && failed >= plan.max_failures)
				break;
		}
	}
	double elapsed = seconds(Clock::now() - begin);
	// --gtest_brief=1 asks for failures only: a short loop that passed says nothing there.
	bool long_run =
			progress && elapsed * 1000 >= static_cast<double>(options.progress_every.count());
	if (GTEST_FLAG_GET(brief) && failed == 0 && !budget_spent && !long_run)
		return first_failure;
	std::printf("helsim: %s: %llu seed%s%s from %llu, %llu failed, %.2f s, %.0f seeds/s%s\n",
			name.c_str(), static_cast<unsigned long long>(ran), ran == 1 ? "" : "s", where.c_str(),
			static_cast<unsigned long long>(plan.start), static_cast<unsigned long long>(failed),
			elapsed, elapsed > 0 ? static_cast<double>(ran) / elapsed : 0.0,
			budget_spent ? "; time budget spent" : "");
	std::fflush(stdout);
	return first_failure;
}

} // namespace detail

// The seed loop (see the top of this file) for a predicate: runs passes(seed) for the planned
// seeds and judges each by the predicate alone. Reports every failing seed with its replay
// command as a gtest failure, prints a one-line summary (and progress lines on long runs),
// and returns the first failing seed; -1 if none failed (or the environment was invalid,
// which is a failure of its own).
inline std::int64_t first_failing_seed(const std::function<bool(std::uint64_t seed)> &passes,
		const SeedLoopOptions &options) {
	return detail::run_seeds(
			[&](std::uint64_t seed, const std::string &label) {
				SCOPED_TRACE(label);
				return passes(seed);
			},
			options);
}

inline std::int64_t first_failing_seed(const std::function<bool(std::uint64_t seed)> &passes,
		std::uint64_t count = 20) {
	SeedLoopOptions options;
	options.count = count;
	return first_failing_seed(passes, options);
}

// Runs body(seed) for every planned seed; a seed fails when its own run of the body records
// a gtest failure (earlier failures of the test, or of other seeds, do not count). Returns
// the first failing seed, or -1.
inline std::int64_t for_each_seed(const std::function<void(std::uint64_t seed)> &body,
		const SeedLoopOptions &options) {
	return detail::run_seeds(
			[&](std::uint64_t seed, const std::string &label) {
				return !detail::failed_in([&] {
					SCOPED_TRACE(label);
					body(seed);
				});
			},
			options);
}

inline std::int64_t for_each_seed(const std::function<void(std::uint64_t seed)> &body,
		std::uint64_t count = 20) {
	SeedLoopOptions options;
	options.count = count;
	return for_each_seed(body, options);
}

} // namespace helsim::testing
