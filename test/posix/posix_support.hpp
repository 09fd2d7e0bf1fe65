// Helpers shared by the POSIX server, client and system tests: quiet options, a machine per
// mode, the checks every run ends with, and raw access to what superGetProcessData hands a
// process.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <time.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/posix.hpp>
#include <helsim/testing.hpp>

#include "../../src/posix/protocol.hpp"

namespace helsim::posix::test {

// Options whose console goes nowhere, or into `*sink`; the deterministic runs stay silent.
inline Options quiet(Options options = {}, std::string *sink = nullptr) {
	if (sink)
		options.console = [sink](std::string_view text) { sink->append(text); };
	else
		options.console = [](std::string_view) {};
	return options;
}

// A threads-mode machine (real parallelism, real time).
inline MachineConfig threads_mode(unsigned cpus = 2) {
	MachineConfig config;
	config.cpus = cpus;
	config.mode = Mode::threads;
	return config;
}

// What every run must end with: nothing stuck, nothing leaked, nothing left in flight.
inline void expect_clean(const RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
}

// Runs `body` with a deterministic machine for each of `seeds` seeds, then (when
// `threads_runs` is not 0) that many times with a threads-mode machine.
inline void for_each_mode(const std::function<void(const MachineConfig &)> &body,
		std::uint64_t seeds = 20, std::uint64_t threads_runs = 0) {
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { body(helsim::testing::deterministic(seed)); }, seeds);
	if (threads_runs)
		helsim::testing::for_each_seed([&](std::uint64_t) { body(threads_mode()); }, threads_runs);
}

// superGetProcessData made by hand, as mlibc's entry does: the server writes the struct.
inline HelError raw_process_data(protocol::ProcessData &data) {
	return helSyscall1(static_cast<int>(kHelCallSuper +
							   static_cast<std::uint32_t>(protocol::kSuperGetProcessData)),
			reinterpret_cast<HelWord>(&data));
}

// A supercall's raw answer: the HelError, Out0 and Out1.
struct SuperAnswer {
	HelError error;
	HelWord out0;
	HelWord out1;
};
inline SuperAnswer raw_supercall(std::uint32_t number, HelWord arg0 = 0, HelWord arg1 = 0) {
	SuperAnswer answer{};
	answer.error = helSyscall2_2(static_cast<int>(kHelCallSuper + number), arg0, arg1, &answer.out0,
			&answer.out1);
	return answer;
}

// A WIFEXITED status's code, or -1 (with a failure) for any other status.
inline int exit_code(const System &system, pid_t pid) {
	int status = system.exit_status(pid);
	EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline constexpr std::int64_t kNsPerSecond = 1'000'000'000;

inline std::int64_t to_ns(const timespec &time) {
	return static_cast<std::int64_t>(time.tv_sec) * kNsPerSecond + time.tv_nsec;
}

} // namespace helsim::posix::test
