// test/posix/system_test.cpp tests src/posix/system.cpp: the host side of the POSIX subsystem
// (programs, spawn, exit statuses, counters, the server's lifetime).
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <helsim/posix.hpp>
#include <helsim/testing.hpp>

#include "posix_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::test;

namespace {

TEST(PosixSystem, ASpawnedProgramRunsAndItsExitStatusIsReported) {
	helsim::Machine machine;
	px::System system{machine, quiet()};
	system.add_program("/bin/answer", [](int argc, char **argv) {
		EXPECT_EQ(argc, 2);
		EXPECT_STREQ(argv[0], "answer");
		EXPECT_STREQ(argv[1], "42");
		EXPECT_EQ(argv[2], nullptr);
		return 42;
	});
	pid_t pid = system.spawn("/bin/answer", {"answer", "42"});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	ASSERT_TRUE(system.has_exited(pid));
	int status = system.exit_status(pid);
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 42);
}

TEST(PosixSystem, PipeBetweenCallsInOneProcess) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		helsim::Machine machine{helsim::testing::deterministic(seed)};
		std::string console;
		px::System system{machine, quiet({}, &console)};
		system.add_program("/bin/p", [](int, char **) {
			int fds[2];
			EXPECT_EQ(px::pipe(fds), 0);
			EXPECT_EQ(fds[0], 3);
			EXPECT_EQ(fds[1], 4);
			EXPECT_EQ(px::write(fds[1], "hello", 5), 5);
			char buf[16] = {};
			EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 5);
			EXPECT_STREQ(buf, "hello");
			EXPECT_EQ(px::close(fds[1]), 0);
			EXPECT_EQ(px::read(fds[0], buf, sizeof buf), 0);
			EXPECT_EQ(px::getpid(), px::gettid());
			EXPECT_EQ(px::write(1, "console\n", 8), 8);
			return 0;
		});
		pid_t pid = system.spawn("/bin/p", {"p"});
		auto report = machine.run();
		EXPECT_FALSE(report.stuck) << report.to_string();
		EXPECT_TRUE(report.leaks.empty()) << report.to_string();
		EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
		EXPECT_EQ(system.exit_status(pid), 0);
		EXPECT_EQ(console, "console\n");
	});
}

TEST(PosixSystem, AddProgramRefusesRelativeEmptyAndDuplicatePaths) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				auto ok = [](int, char **) { return 0; };
				EXPECT_THROW(system.add_program("bin/p", ok), std::invalid_argument);
				EXPECT_THROW(system.add_program("", ok), std::invalid_argument);
				EXPECT_THROW(system.add_program("/bin/empty", px::Main{}), std::invalid_argument);
				EXPECT_THROW(system.add_program("/bin/empty", px::MainWithArgs{}),
						std::invalid_argument);
				system.add_program("/bin/p", ok);
				EXPECT_THROW(system.add_program("/bin/p", ok), std::invalid_argument);
				EXPECT_THROW(system.add_program("/bin/p",
									 [](std::vector<std::string>) { return 1; }),
						std::invalid_argument);
				EXPECT_THROW(system.spawn("/bin/none", {"none"}), std::invalid_argument);
				EXPECT_THROW(system.spawn("bin/p", {"p"}), std::invalid_argument);
				// Nothing was spawned: run() has nothing to do, and no server started.
				expect_clean(machine.run());
				EXPECT_EQ(system.counters().processes_started, 0u);
				// The one that was registered runs (its later duplicates did not replace it).
				pid_t pid = system.spawn("/bin/p", {"p"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			5, 1);
}

// exit_status's two exceptions (std::out_of_range is a std::logic_error too, so which one
// was thrown is checked by hand).
enum class Thrown { nothing, out_of_range, logic_error };
Thrown exit_status_throws(const px::System &system, pid_t pid) {
	try {
		system.exit_status(pid);
	} catch (const std::out_of_range &) {
		return Thrown::out_of_range;
	} catch (const std::logic_error &) {
		return Thrown::logic_error;
	}
	return Thrown::nothing;
}

TEST(PosixSystem, ExitStatusThrowsForUnknownAndLivePids) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/seven", [](int, char **) { return 7; });
				EXPECT_EQ(exit_status_throws(system, 1), Thrown::out_of_range);
				EXPECT_FALSE(system.has_exited(1));
				pid_t pid = system.spawn("/bin/seven", {"seven"});
				EXPECT_EQ(exit_status_throws(system, pid), Thrown::logic_error);
				EXPECT_FALSE(system.has_exited(pid));
				for (pid_t never : {pid + 1, 0, -1})
					EXPECT_EQ(exit_status_throws(system, never), Thrown::out_of_range) << never;
				expect_clean(machine.run());
				EXPECT_EQ(exit_status_throws(system, pid), Thrown::nothing);
				EXPECT_TRUE(system.has_exited(pid));
				EXPECT_EQ(exit_code(system, pid), 7);
				EXPECT_EQ(exit_status_throws(system, pid + 1), Thrown::out_of_range);
				EXPECT_FALSE(system.has_exited(pid + 1));
			},
			5, 1);
}

// The server stops after the last process; spawn() starts it again, with the tmpfs, the
// realtime clock and the counters carried over, and pids never reused.
TEST(PosixSystem, SpawnAfterRunStartsTheServerAgain) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				std::int64_t realtime[2] = {};
				system.add_program("/bin/write", [&](int, char **) {
					int fd = px::open("/kept", O_CREAT | O_WRONLY, 0644);
					EXPECT_GE(fd, 0);
					EXPECT_EQ(px::write(fd, "kept", 4), 4);
					EXPECT_EQ(px::close(fd), 0);
					timespec now{};
					EXPECT_EQ(px::clock_gettime(CLOCK_REALTIME, &now), 0);
					realtime[0] = to_ns(now);
					return 1;
				});
				system.add_program("/bin/read", [&](int, char **) {
					int fd = px::open("/kept", O_RDONLY);
					EXPECT_GE(fd, 0);
					char text[8] = {};
					EXPECT_EQ(px::read(fd, text, sizeof text), 4);
					EXPECT_STREQ(text, "kept");
					EXPECT_EQ(px::close(fd), 0);
					timespec now{};
					EXPECT_EQ(px::clock_gettime(CLOCK_REALTIME, &now), 0);
					realtime[1] = to_ns(now);
					return 2;
				});
				pid_t first = system.spawn("/bin/write", {"write"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, first), 1);
				auto after_first = system.counters();
				EXPECT_EQ(after_first.processes_started, 1u);
				EXPECT_EQ(after_first.processes_exited, 1u);

				pid_t second = system.spawn("/bin/read", {"read"});
				EXPECT_GT(second, first);
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, second), 2);
				EXPECT_EQ(exit_code(system, first), 1);
				auto after_second = system.counters();
				EXPECT_EQ(after_second.processes_started, 2u);
				EXPECT_EQ(after_second.processes_exited, 2u);
				EXPECT_GE(after_second.server_requests,
						after_first.server_requests + 2);       // open, close
				EXPECT_EQ(after_second.clock_page_updates, 2u); // one per server start
				EXPECT_LT(realtime[0], realtime[1]);
			},
			20, 2);
}

// Many processes at once, each with a few requests and supercalls; every one exits with its
// own status, and the counters add up.
TEST(PosixSystem, ManyProcessesAtOnce) {
	static constexpr int kProcesses = 20;
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				std::atomic<int> ran{0};
				system.add_program("/bin/worker", [&](std::vector<std::string> argv) {
					EXPECT_EQ(px::getppid(), 0);
					EXPECT_EQ(px::gettid(), px::getpid());
					int fds[2];
					EXPECT_EQ(px::pipe(fds), 0);
					EXPECT_EQ(px::close(fds[0]), 0);
					EXPECT_EQ(px::close(fds[1]), 0);
					ran.fetch_add(1, std::memory_order_relaxed);
					return std::stoi(argv.at(1));
				});
				std::vector<pid_t> pids;
				for (int i = 0; i < kProcesses; ++i)
					pids.push_back(system.spawn("/bin/worker", {"worker", std::to_string(i)}));
				// Deterministic mode runs nothing before run(); threads mode's CPUs start a
				// spawned fiber at once.
				if (config.mode == helsim::Mode::deterministic) {
					EXPECT_EQ(system.counters().processes_started, 0u);
				}
				expect_clean(machine.run());
				EXPECT_EQ(ran.load(), kProcesses);
				for (int i = 0; i < kProcesses; ++i)
					EXPECT_EQ(exit_code(system, pids[static_cast<std::size_t>(i)]), i);
				auto counters = system.counters();
				EXPECT_EQ(counters.processes_started, std::uint64_t{kProcesses});
				EXPECT_EQ(counters.processes_exited, std::uint64_t{kProcesses});
			},
			20, 3);
}

// The same workload with every acceleration strategy on and with every one off: the same
// results, reached by other paths (the counters say which).
std::string workload(const helsim::MachineConfig &config, const px::Options &options,
		px::Counters &counters, std::uint64_t *trace_hash = nullptr) {
	helsim::Machine machine{config};
	px::System system{machine, quiet(options)};
	std::string result;
	system.add_program("/bin/child", [](std::vector<std::string> argv) {
		int fd = std::stoi(argv.at(1));
		return px::write(fd, "child", 5) == 5 ? 0 : 1;
	});
	system.add_program("/bin/work", [&](int, char **) {
		pid_t pid = px::getpid();
		EXPECT_EQ(px::gettid(), pid);
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(px::write(fds[1], "hello ", 6), 6);
		std::string fd = std::to_string(fds[1]);
		const char *args[] = {"child", fd.c_str(), nullptr};
		EXPECT_GT(px::spawn("/bin/child", args), pid);
		EXPECT_EQ(px::close(fds[1]), 0);
		char buffer[32];
		for (ssize_t n; (n = px::read(fds[0], buffer, sizeof buffer)) > 0;)
			result.append(buffer, static_cast<std::size_t>(n));
		EXPECT_EQ(px::close(fds[0]), 0);

		int file = px::open("/file", O_CREAT | O_RDWR, 0600);
		EXPECT_EQ(px::pwrite(file, " file", 5, 0), 5);
		EXPECT_EQ(px::lseek(file, 1, SEEK_SET), 1);
		EXPECT_EQ(px::read(file, buffer, 4), 4);
		result.append(buffer, 4);
		EXPECT_EQ(px::close(file), 0);

		auto *memory = static_cast<char *>(px::mmap(nullptr, 8192, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
		EXPECT_FALSE(px::mmap_failed(memory));
		if (!px::mmap_failed(memory)) {
			std::memcpy(memory + 4096, " mem", 4);
			result.append(memory + 4096, 4);
			EXPECT_EQ(px::munmap(memory, 8192), 0);
		}
		timespec real{}, mono{};
		EXPECT_EQ(px::clock_gettime(CLOCK_REALTIME, &real), 0);
		EXPECT_EQ(px::clock_gettime(CLOCK_MONOTONIC, &mono), 0);
		EXPECT_GT(to_ns(real), to_ns(mono));
		return 0;
	});
	pid_t pid = system.spawn("/bin/work", {"work"});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(exit_code(system, pid), 0);
	EXPECT_EQ(exit_code(system, pid + 1), 0);
	counters = system.counters();
	if (trace_hash)
		*trace_hash = report.trace_hash;
	return result;
}

TEST(PosixSystem, EveryStrategyOffGivesTheSameResults) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				px::Counters on{}, off{};
				std::string fast = workload(config, {}, on);
				std::string slow = workload(config,
						{.supercalls = false,
								.file_table = false,
								.thread_page = false,
								.clock_page = false,
								.status_page = false,
								.batching = false,
								.fork_cow = false},
						off);
				EXPECT_EQ(fast, "hello childfile mem");
				EXPECT_EQ(slow, fast);
				// On: superGetProcessData and _exit (in each process), gettid, mmap and munmap
				// are supercalls; files go straight to their servers.
				EXPECT_EQ(on.supercalls, 7u);
				EXPECT_EQ(on.forwarded_requests, 0u);
				EXPECT_GT(on.passthrough_requests, 0u);
				EXPECT_EQ(on.clock_page_updates, 1u);
				// Off: only superGetProcessData (how a process finds its lane) stays one.
				EXPECT_EQ(off.supercalls, 2u);
				EXPECT_GT(off.forwarded_requests, 0u);
				EXPECT_EQ(off.clock_page_updates, 0u);
				EXPECT_GT(off.server_requests, on.server_requests);
			},
			20, 3);
}

// Deterministic mode replays: the same seed gives the same schedule (trace hash), the same
// virtual time and the same results, POSIX server included.
TEST(PosixSystem, TheSameSeedReplaysTheSameRun) {
	auto run = [](std::uint64_t seed) {
		px::Counters counters{};
		std::uint64_t hash = 0;
		std::string result = workload(helsim::testing::deterministic(seed), {}, counters, &hash);
		return std::make_tuple(hash, result, counters.server_requests,
				counters.passthrough_requests, counters.client_submissions);
	};
	helsim::testing::for_each_seed([&](std::uint64_t seed) {
		auto first = run(seed);
		auto second = run(seed);
		EXPECT_EQ(first, second);
		EXPECT_NE(std::get<0>(first), 0u);
	});
}

} // namespace
