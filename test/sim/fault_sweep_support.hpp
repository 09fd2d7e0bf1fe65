// Fault sweeps (docs/testing.md, "Fault sweeps"): run a workload once to learn how often it
// passes each FaultPoint, then once for every k with the k-th pass failing. Every run must end
// cleanly: no thread panics, throws or faults, every operation completes exactly once, nothing
// leaks. The workload itself checks that each call ends in kHelErrNone or a documented error.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace helsim::sweep {

inline constexpr std::array kAllPoints{FaultPoint::frame_allocation, FaultPoint::object_creation,
		FaultPoint::handle_table_growth, FaultPoint::queue_chunks};

// Whether `error` is kHelErrNone; anything else must be one of `documented` (a failure names
// the call).
inline bool ok(HelError error, const char *call,
		std::initializer_list<HelError> documented = {kHelErrNoMemory}) {
	if (error == kHelErrNone)
		return true;
	EXPECT_NE(std::find(documented.begin(), documented.end(), error), documented.end())
			<< call << ": HelError " << error;
	return false;
}

// The documented outcomes of a stream action when memory may run out: the allocation failed
// (here, or on the other side of the pairing), or the peer gave up and closed its lane.
inline constexpr std::initializer_list<HelError> kStreamErrors{kHelErrNoMemory, kHelErrEndOfLane};

// Checks every result of a parsed exchange (each is reported); true if all succeeded.
template <typename Tuple>
bool results_ok(const Tuple &results, const char *exchange) {
	int failed = 0;
	std::apply(
			[&](const auto &...result) {
				((failed += ok(result.error, exchange, kStreamErrors) ? 0 : 1), ...);
			},
			results);
	return failed == 0;
}

// A dispatcher, or nullopt if creating its queue failed with kHelErrNoMemory (the only
// documented way it may fail here).
inline bool open_dispatcher(std::optional<Dispatcher> &dispatcher, QueueConfig config = {}) {
	try {
		dispatcher.emplace(config);
		return true;
	} catch (const HelException &e) {
		EXPECT_EQ(e.error(), kHelErrNoMemory) << e.what();
		return false;
	}
}

// Waits for one completion per context in `contexts`, each exactly once.
inline std::map<std::uintptr_t, Element> collect(Dispatcher &dispatcher,
		const std::set<std::uintptr_t> &contexts) {
	std::map<std::uintptr_t, Element> seen;
	while (seen.size() < contexts.size()) {
		auto element = dispatcher.wait();
		if (!element) {
			ADD_FAILURE() << "the wait for a completion was interrupted";
			break;
		}
		std::uintptr_t context = element->context();
		if (!contexts.contains(context) || seen.contains(context)) {
			ADD_FAILURE() << "completion " << context << " unexpected or twice";
			break;
		}
		seen.emplace(context, std::move(*element));
	}
	return seen;
}

// Legacy submission (helSubmitAsync): a refused one is the call's error, an accepted one
// completes on the dispatcher's queue.
template <typename... Items>
bool submit_async(Dispatcher &dispatcher, HelHandle lane, std::uintptr_t context,
		const Items &...items) {
	auto actions = ipc::actions(items...);
	return ok(helSubmitAsync(lane, actions.data(), actions.size(), dispatcher.queue(), context, 0),
			"helSubmitAsync");
}

// Reads `size` bytes at `offset` of a view through the kernel; false if that failed.
inline bool read_view(Dispatcher &d, HelHandle view, std::uintptr_t offset, void *out,
		std::size_t size) {
	auto done = test::sq_call(d, kHelSubmitReadMemory, HelSqReadMemory{view, offset, size, out});
	return ok(done.error(), "kHelSubmitReadMemory");
}

inline bool write_view(Dispatcher &d, HelHandle view, std::uintptr_t offset, const void *in,
		std::size_t size) {
	auto done = test::sq_call(d, kHelSubmitWriteMemory, HelSqWriteMemory{view, offset, size, in});
	return ok(done.error(), "kHelSubmitWriteMemory");
}

struct Workload {
	const char *name;
	// Registers what the workload needs on the machine and spawns its threads.
	std::function<void(Machine &)> start;
	// The points a clean run must pass at least once (so that the sweep sweeps something).
	std::vector<FaultPoint> passes;
	// Runs after the run, before the machine goes: checks what only the host sees.
	std::function<void()> finish = {};
	// Whether a clean run may end threads with helKillThread (a POSIX execve or signal does).
	bool kills_threads = false;
};

// HELSIM_SWEEP_SEEDS=n sweeps seeds 1..n (default 1): other interleavings of the same
// workload meet each failure at another moment.
inline std::uint64_t sweep_seeds() {
	const char *seeds = std::getenv("HELSIM_SWEEP_SEEDS");
	return seeds ? std::max<std::uint64_t>(1, std::strtoull(seeds, nullptr, 10)) : 1;
}

inline void expect_clean(const Workload &workload, const RunReport &report) {
	if (workload.kills_threads)
		test::expect_clean(report, {ThreadOutcome::returned, ThreadOutcome::killed});
	else
		test::expect_clean(report);
}

inline RunReport run_once(const Workload &workload, std::uint64_t seed, FaultPoint point,
		std::uint64_t k) {
	MachineConfig config = testing::deterministic(seed);
	config.inject.at(point) = k;
	config.log_sink = [](const LogRecord &) {};
	Machine machine{config};
	workload.start(machine);
	RunReport report = machine.run();
	if (workload.finish)
		workload.finish();
	return report;
}

// Sweeps every point of `points` over every k; stops at the first k that fails.
inline void sweep(const Workload &workload, std::span<const FaultPoint> points = kAllPoints) {
	for (std::uint64_t seed = 1; seed <= sweep_seeds(); ++seed)
		for (FaultPoint point : points) {
			SCOPED_TRACE(std::string{workload.name} + ", seed " + std::to_string(seed) +
					", point " + to_string(point));
			RunReport clean = run_once(workload, seed, point, 0);
			expect_clean(workload, clean);
			EXPECT_EQ(clean.counters.injected_fail_at, 0u);
			std::uint64_t total = clean.counters.passes(point);
			::testing::Test::RecordProperty(std::string{workload.name} + ": " + to_string(point),
					std::to_string(total));
			if (std::find(workload.passes.begin(), workload.passes.end(), point) !=
					workload.passes.end()) {
				EXPECT_GT(total, 0u) << "the workload never passes the point";
			}
			for (std::uint64_t k = 1; k <= total; ++k) {
				SCOPED_TRACE("k = " + std::to_string(k) + " of " + std::to_string(total));
				RunReport report = run_once(workload, seed, point, k);
				expect_clean(workload, report);
				EXPECT_EQ(report.counters.injected_fail_at, 1u) << "the k-th pass failed";
				if (::testing::Test::HasFailure())
					return;
			}
		}
}

} // namespace helsim::sweep
