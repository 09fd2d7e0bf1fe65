// What the POSIX layer's fault sweeps share (docs/testing.md, "Fault sweeps"): POSIX programs on
// the POSIX server, the k-th frame allocation, object creation, handle table growth or queue
// chunk supply failing for every k. A run ends cleanly when the machine's report is clean (no
// thread throws, faults or is stuck, nothing pending, nothing leaked), every POSIX call returns
// its result or -ENOMEM (the one whose kernel work failed; a spawn that could not start its
// child -EAGAIN), at most one call or process start fails (the server serves every other
// request), and every process the host spawned exited with 0, or with 127 if it never started.
#pragma once

#include "../sim/fault_sweep_support.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <helsim/posix.hpp>

namespace helsim::posix_sweep {

namespace px = helsim::posix;
using namespace helsim::sweep;

// What one run's programs saw: the calls that failed with their documented error.
struct Seen {
	std::atomic<int> failures{0};
};

// Whether a POSIX call succeeded (a result >= 0); otherwise its result must be one of
// `documented`, and counts as the run's failure.
inline bool posix_ok(Seen &seen, std::int64_t result, const char *call,
		std::initializer_list<std::int64_t> documented = {-ENOMEM}) {
	if (result >= 0)
		return true;
	EXPECT_NE(std::find(documented.begin(), documented.end(), result), documented.end())
			<< call << ": " << result;
	++seen.failures;
	return false;
}

// A program of a sweep: main, with what the run's programs saw.
using Program = std::function<int(Seen &, int argc, char **argv)>;

// A fresh System per run with `programs` registered; the host spawns the first. After the
// run, that process exited with 0, or with 127 when it could not be started (the run's one
// failure).
struct PosixRun {
	std::unique_ptr<px::System> system;
	std::shared_ptr<Seen> seen;
	pid_t pid = 0;

	void start(helsim::Machine &machine,
			const std::vector<std::pair<std::string, Program>> &programs, px::Options options,
			const std::function<void(px::System &)> &setup) {
		options.console = [](std::string_view) {};
		system = std::make_unique<px::System>(machine, std::move(options));
		if (setup)
			setup(*system);
		seen = std::make_shared<Seen>();
		for (const auto &[path, main] : programs)
			system->add_program(path, [seen = seen, program = main](int argc, char **argv) {
				return program(*seen, argc, argv);
			});
		pid = system->spawn(programs.front().first, {programs.front().first});
	}

	void finish() {
		ASSERT_TRUE(system->has_exited(pid));
		int status = system->exit_status(pid);
		EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
		if (WEXITSTATUS(status) == 127)
			++seen->failures;
		else
			EXPECT_EQ(WEXITSTATUS(status), 0);
		EXPECT_LE(seen->failures.load(), 1) << "one failed kernel operation, one failed call";
		system.reset();
	}
};

// Sweeps `programs` over `points` (each must be passed); `setup` adds to each run's System.
inline void sweep_posix(const char *name,
		const std::vector<std::pair<std::string, Program>> &programs,
		const px::Options &options = {}, std::span<const FaultPoint> points = kAllPoints,
		const std::function<void(px::System &)> &setup = {}) {
	PosixRun run;
	helsim::sweep::sweep({name, [&](helsim::Machine &m) { run.start(m, programs, options, setup); },
								 {points.begin(), points.end()}, [&] { run.finish(); }, true},
			points);
}

// A call that failed with -ENOMEM did nothing (docs/posix.md, "When memory runs out"): the
// second try, the run's one failure spent, does it.
template <typename Call>
inline std::int64_t again(Seen &seen, const char *call, Call &&make_call) {
	std::int64_t result = make_call();
	if (result == -ENOMEM) {
		posix_ok(seen, result, call);
		result = make_call();
		EXPECT_NE(result, -ENOMEM) << call << ": the server serves the next request";
	}
	return result;
}

inline void close_fd(Seen &seen, int fd) {
	EXPECT_EQ(again(seen, "close", [&] { return px::close(fd); }), 0);
}

} // namespace helsim::posix_sweep
