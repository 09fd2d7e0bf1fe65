// test/posix/client_test.cpp tests src/posix/client.cpp: the calls a process makes (pids,
// spawn, anonymous memory, clocks, sleeping) on each of their paths, and what they answer
// outside a POSIX process.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::test;

namespace {

std::int64_t monotonic_ns() {
	std::uint64_t now = 0;
	EXPECT_EQ(helGetClock(&now), kHelErrNone);
	return static_cast<std::int64_t>(now);
}

std::int64_t clock_ns(clockid_t clock) {
	timespec time{-1, -1};
	EXPECT_EQ(px::clock_gettime(clock, &time), 0) << "clock " << clock;
	EXPECT_GE(time.tv_nsec, 0);
	EXPECT_LT(time.tv_nsec, kNsPerSecond);
	return to_ns(time);
}

// ------------------------------------------------------------------ pids and spawn

struct Ids {
	pid_t pid = 0, ppid = -1, tid = 0;
	std::vector<std::string> argv;
};

TEST(PosixClient, PidsParentsAndArgv) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				Ids parent, child;
				pid_t spawned = 0;
				system.add_program("/bin/child", [&](std::vector<std::string> argv) {
					child = {px::getpid(), px::getppid(), px::gettid(), argv};
					return 0;
				});
				system.add_program("/bin/parent", [&](std::vector<std::string> argv) {
					parent = {px::getpid(), px::getppid(), px::gettid(), argv};
					const char *args[] = {"child", "two words", "", nullptr};
					spawned = px::spawn("/bin/child", args);
					EXPECT_EQ(px::spawn("/bin/none", args), -ENOENT);
					EXPECT_EQ(px::spawn("bin/child", args), -ENOENT); // relative: not registered
					EXPECT_EQ(px::spawn("", args), -ENOENT);
					EXPECT_EQ(px::spawn(nullptr, args), -EFAULT);
					// Lives until the child ends: an orphan's parent would be the reaper.
					EXPECT_EQ(px::waitpid(spawned, nullptr, 0), spawned);
					return 0;
				});
				pid_t pid = system.spawn("/bin/parent", {"parent", "x"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(parent.pid, pid);
				EXPECT_EQ(parent.ppid, 0); // started by the host
				EXPECT_EQ(parent.tid, pid);
				EXPECT_EQ(parent.argv, (std::vector<std::string>{"parent", "x"}));
				ASSERT_GT(spawned, 0);
				EXPECT_NE(spawned, pid);
				EXPECT_EQ(exit_code(system, spawned), 0);
				EXPECT_EQ(child.pid, spawned);
				EXPECT_EQ(child.ppid, pid);
				EXPECT_EQ(child.tid, spawned);
				EXPECT_EQ(child.argv, (std::vector<std::string>{"child", "two words", ""}));
				EXPECT_EQ(system.counters().processes_started, 2u);
			},
			20, 2);
}

// The strings of an in-process spawn travel as one tail of at most protocol::kMaxTail bytes.
TEST(PosixClient, SpawnArgvUpToTheTailLimit) {
	static constexpr std::size_t kBig = helsim::posix::protocol::kMaxTail - 64;
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				std::mutex mutex;
				std::vector<std::vector<std::size_t>> seen; // each child's argv lengths
				system.add_program("/bin/child", [&](std::vector<std::string> argv) {
					std::vector<std::size_t> lengths;
					for (const auto &arg : argv)
						lengths.push_back(arg.size());
					std::lock_guard lock{mutex};
					seen.push_back(lengths);
					return 0;
				});
				system.add_program("/bin/parent", [](int, char **) {
					std::string big(kBig, 'x');
					std::string too_big(kBig + 64, 'x');
					const char *fits[] = {"child", big.c_str(), nullptr};
					const char *over[] = {"child", too_big.c_str(), nullptr};
					EXPECT_EQ(px::spawn("/bin/child", over), -E2BIG);
					EXPECT_GT(px::spawn("/bin/child", fits), 0);
					EXPECT_GT(px::spawn("/bin/child", nullptr), 0); // no argv at all
					return 0;
				});
				pid_t pid = system.spawn("/bin/parent", {"parent"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(system.counters().processes_started, 3u);
				std::sort(seen.begin(), seen.end());
				EXPECT_EQ(seen, (std::vector<std::vector<std::size_t>>{{}, {5, kBig}}));
			},
			20, 2);
}

// A thread that is not a POSIX process's gets -ENOSYS from every call (and a thread whose fs
// word points at something else is not mistaken for one).
TEST(PosixClient, CallsOutsideAPosixProcessAreEnosys) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/ok", [](int, char **) { return 0; });
				pid_t pid = system.spawn("/bin/ok", {"ok"});
				auto check = [](std::span<const HelHandle>) {
					timespec time{};
					int fds[2];
					char byte = 0;
					EXPECT_EQ(px::getpid(), -ENOSYS);
					EXPECT_EQ(px::getppid(), -ENOSYS);
					EXPECT_EQ(px::gettid(), -ENOSYS);
					EXPECT_EQ(px::open("/dev/null", O_RDONLY), -ENOSYS);
					EXPECT_EQ(px::read(0, &byte, 1), -ENOSYS);
					EXPECT_EQ(px::pipe(fds), -ENOSYS);
					EXPECT_EQ(px::clock_gettime(CLOCK_MONOTONIC, &time), -ENOSYS);
					EXPECT_EQ(px::nanosleep(&time, nullptr), -ENOSYS);
					void *memory =
							px::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
					EXPECT_TRUE(px::mmap_failed(memory));
					EXPECT_EQ(reinterpret_cast<std::intptr_t>(memory), -ENOSYS);
					const char *args[] = {"ok", nullptr};
					EXPECT_EQ(px::spawn("/bin/ok", args), -ENOSYS);
					EXPECT_EQ(px::counters().supercalls, 0u);
					EXPECT_THROW(px::_exit(0), std::logic_error);
				};
				machine.spawn("plain", check);
				machine.spawn("other-fs", [&](std::span<const HelHandle> handles) {
					std::uint64_t not_a_client[4] = {};
					EXPECT_EQ(helWriteFsBase(not_a_client), kHelErrNone);
					check(handles);
					EXPECT_EQ(helWriteFsBase(nullptr), kHelErrNone);
				});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			20, 2);
}

// ------------------------------------------------------------------ anonymous memory

void memory_program() {
	constexpr std::size_t kSize = 3 * 4096 + 100;
	auto *a = static_cast<unsigned char *>(
			px::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	auto *b = static_cast<unsigned char *>(
			px::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	ASSERT_FALSE(px::mmap_failed(a));
	ASSERT_FALSE(px::mmap_failed(b));
	EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 4096, 0u);
	EXPECT_TRUE(b >= a + 4 * 4096 || b + 4096 <= a) << "overlapping mappings";
	for (std::size_t i = 0; i < kSize; ++i)
		EXPECT_EQ(a[i], 0) << i; // fresh memory is zero
	for (std::size_t i = 0; i < kSize; ++i)
		a[i] = static_cast<unsigned char>(i * 7);
	std::memset(b, 0xab, 4096);
	for (std::size_t i = 0; i < kSize; i += 97)
		EXPECT_EQ(a[i], static_cast<unsigned char>(i * 7));
	EXPECT_EQ(b[4095], 0xab);
	EXPECT_EQ(px::munmap(a, kSize), 0);
	EXPECT_EQ(px::munmap(b, 4096), 0);

	auto error = [](void *result) {
		return static_cast<int>(reinterpret_cast<std::intptr_t>(result));
	};
	constexpr int kRw = PROT_READ | PROT_WRITE;
	constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
	void *r = px::mmap(nullptr, 0, kRw, kAnon, -1, 0);
	EXPECT_TRUE(px::mmap_failed(r));
	EXPECT_EQ(error(r), -EINVAL);
	EXPECT_EQ(error(px::mmap(nullptr, 4096, kRw, MAP_PRIVATE, 3, 0)), -ENODEV);
	EXPECT_EQ(error(px::mmap(nullptr, 4096, kRw, kAnon | MAP_FIXED, -1, 0)), -EINVAL);
	EXPECT_EQ(error(px::mmap(nullptr, 4096, 0x40, kAnon, -1, 0)), -EINVAL);
	EXPECT_EQ(error(px::mmap(nullptr, 4096, kRw, MAP_ANONYMOUS, -1, 0)), -EINVAL);
	EXPECT_EQ(error(px::mmap(nullptr, 4096, kRw, kAnon, -1, 100)), -EINVAL);
	EXPECT_EQ(px::munmap(reinterpret_cast<void *>(4097), 4096), -EINVAL);
	EXPECT_EQ(error(px::mmap(nullptr, SIZE_MAX, kRw, kAnon, -1, 0)), -ENOMEM);
	void *none = px::mmap(nullptr, 4096, PROT_NONE, kAnon, -1, 0);
	EXPECT_FALSE(px::mmap_failed(none));
	EXPECT_EQ(px::munmap(none, 4096), 0);
	void *c = px::mmap(nullptr, 4096, kRw, kAnon, -1, 0);
	ASSERT_FALSE(px::mmap_failed(c));
	EXPECT_EQ(px::munmap(c, 0), -EINVAL);
	EXPECT_EQ(px::munmap(c, 4096), 0);
}

TEST(PosixClient, AnonymousMemory) {
	for (bool supercalls : {true, false}) {
		SCOPED_TRACE(supercalls ? "supercalls" : "requests");
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.supercalls = supercalls})};
					px::Counters before{}, after{};
					system.add_program("/bin/mem", [&](int, char **) {
						before = px::counters();
						memory_program();
						after = px::counters();
						return 0;
					});
					pid_t pid = system.spawn("/bin/mem", {"mem"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0);
					// 4 maps and 4 unmaps, 1 map and 2 unmaps refused, reach the server; the
					// other refused maps are the client's.
					std::uint64_t served = 11;
					EXPECT_EQ(after.supercalls - before.supercalls, supercalls ? served : 0);
					EXPECT_EQ(after.server_requests - before.server_requests,
							supercalls ? 0 : served);
				},
				20, 2);
	}
}

// The kernel copies to and from a process's buffers, so a bad pointer is -EFAULT and not a
// fault that kills the process, on the passthrough path and the forwarded one.
TEST(PosixClient, BadPointersAreEfaultNotFaults) {
	for (bool file_table : {true, false}) {
		SCOPED_TRACE(file_table ? "file table" : "forwarded");
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.file_table = file_table})};
					system.add_program("/bin/bad", [](int, char **) {
						auto *nowhere = reinterpret_cast<void *>(16);
						int fds[2];
						EXPECT_EQ(px::pipe(fds), 0);
						EXPECT_EQ(px::write(fds[1], nowhere, 3), -EFAULT);
						EXPECT_EQ(px::fstat(fds[0], static_cast<struct stat *>(nowhere)), -EFAULT);
						EXPECT_EQ(px::pipe(static_cast<int *>(nullptr)), -EFAULT);
						int zero = px::open("/dev/zero", O_RDONLY);
						EXPECT_GE(zero, 0);
						EXPECT_EQ(px::read(zero, nowhere, 3), -EFAULT);
						char byte = 1;
						EXPECT_EQ(px::read(zero, &byte, 1), 1);
						EXPECT_EQ(byte, 0);
						// Nothing went into the pipe.
						EXPECT_EQ(px::close(fds[1]), 0);
						EXPECT_EQ(px::read(fds[0], &byte, 1), 0);
						return 0;
					});
					pid_t pid = system.spawn("/bin/bad", {"bad"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0);
				},
				20, 2);
	}
}

// ------------------------------------------------------------------ clocks

TEST(PosixClient, MonotonicIsHelGetClockAndNeverGoesBack) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/mono", [](int, char **) {
					std::int64_t last = 0;
					for (int i = 0; i < 20; ++i) {
						std::int64_t before = monotonic_ns();
						std::int64_t mono = clock_ns(i % 2 ? CLOCK_MONOTONIC : CLOCK_BOOTTIME);
						std::int64_t after = monotonic_ns();
						EXPECT_LE(before, mono);
						EXPECT_LE(mono, after);
						EXPECT_LE(last, mono);
						last = mono;
					}
					return 0;
				});
				pid_t pid = system.spawn("/bin/mono", {"mono"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			20, 2);
}

// REALTIME = Options::realtime_at_start_ns (2026-01-01 by default in deterministic mode) plus
// the monotonic time elapsed, read from the page (no IPC) or by a request (clock_page off).
TEST(PosixClient, RealtimeIsTheStartPlusElapsedWithAndWithoutThePage) {
	constexpr std::int64_t kEpoch2026 = 1'767'225'600 * kNsPerSecond;
	constexpr std::int64_t kCustom = 1'000'000'000 * kNsPerSecond + 123;
	constexpr std::uint64_t kCalls = 10;
	for (bool page : {true, false}) {
		for (std::int64_t start : {std::int64_t{0}, kCustom}) {
			SCOPED_TRACE(
					std::string{page ? "page" : "request"} + " start " + std::to_string(start));
			for_each_mode([&](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine,
						quiet({.clock_page = page, .realtime_at_start_ns = start})};
				px::Counters before{}, after{};
				system.add_program("/bin/real", [&](int, char **) {
					std::int64_t expected = start ? start : kEpoch2026;
					before = px::counters();
					for (std::uint64_t i = 0; i < kCalls; ++i) {
						std::int64_t m1 = monotonic_ns();
						std::int64_t real =
								clock_ns(i % 2 ? CLOCK_REALTIME : CLOCK_REALTIME_COARSE);
						std::int64_t m2 = monotonic_ns();
						EXPECT_LE(m1 + expected, real) << "call " << i;
						EXPECT_LE(real, m2 + expected) << "call " << i;
					}
					after = px::counters();
					return 0;
				});
				pid_t pid = system.spawn("/bin/real", {"real"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(after.client_submissions - before.client_submissions, page ? 0 : kCalls);
				EXPECT_EQ(after.server_requests - before.server_requests, page ? 0 : kCalls);
				EXPECT_EQ(after.supercalls - before.supercalls, 0u);
			});
		}
	}
}

// clock_settime in one process moves REALTIME for the next, on either path; the server's
// page is written once at its start and once per clock_settime.
TEST(PosixClient, SettimeIsSeenByAnotherProcess) {
	constexpr std::int64_t kSet = 1'893'456'000 * kNsPerSecond; // 2030-01-01
	for (bool page : {true, false}) {
		SCOPED_TRACE(page ? "page" : "request");
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					helsim::Machine machine{config};
					px::System system{machine, quiet({.clock_page = page})};
					std::int64_t seen = 0, m1 = 0, m2 = 0, set_at = 0;
					system.add_program("/bin/reader", [&](int, char **) {
						m1 = monotonic_ns();
						seen = clock_ns(CLOCK_REALTIME);
						m2 = monotonic_ns();
						return 0;
					});
					system.add_program("/bin/setter", [&](int, char **) {
						timespec when{static_cast<time_t>(kSet / kNsPerSecond), 0};
						set_at = monotonic_ns();
						EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &when), 0);
						const char *args[] = {"reader", nullptr};
						EXPECT_GT(px::spawn("/bin/reader", args), 0);
						return 0;
					});
					system.spawn("/bin/setter", {"setter"});
					expect_clean(machine.run());
					// The server took the new time at or after set_at: the clock reads at most
					// what it would have if it had been set exactly then.
					EXPECT_LE(seen, kSet + (m2 - set_at));
					EXPECT_GE(seen, kSet);
					EXPECT_LT(seen, kSet + 60 * kNsPerSecond) << "m1 " << m1;
					EXPECT_EQ(system.counters().clock_page_updates, page ? 2u : 0u);
				},
				20, 2);
	}
}

TEST(PosixClient, ClockArgumentsAreChecked) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/bad", [](int, char **) {
					timespec time{};
					EXPECT_EQ(px::clock_gettime(CLOCK_MONOTONIC, nullptr), -EFAULT);
					EXPECT_EQ(px::clock_gettime(CLOCK_REALTIME, nullptr), -EFAULT);
					EXPECT_EQ(px::clock_gettime(1234, &time), -EINVAL);
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, nullptr), -EFAULT);
					timespec fine{100, 0};
					EXPECT_EQ(px::clock_settime(CLOCK_MONOTONIC, &fine), -EINVAL);
					timespec bad_ns{100, kNsPerSecond};
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &bad_ns), -EINVAL);
					timespec negative_ns{100, -1};
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &negative_ns), -EINVAL);
					timespec negative_s{-1, 0};
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &negative_s), -EINVAL);
					timespec too_late{std::numeric_limits<time_t>::max(), 0};
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &too_late), -EINVAL);
					too_late.tv_sec = std::numeric_limits<std::int64_t>::max() / kNsPerSecond;
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &too_late), -EINVAL);
					EXPECT_EQ(px::nanosleep(nullptr, nullptr), -EFAULT);
					EXPECT_EQ(px::nanosleep(&bad_ns, nullptr), -EINVAL);
					EXPECT_EQ(px::nanosleep(&negative_ns, nullptr), -EINVAL);
					EXPECT_EQ(px::nanosleep(&negative_s, nullptr), -EINVAL);
					// Nothing above changed the clock (it reads between 2001 and 2096).
					EXPECT_GT(clock_ns(CLOCK_REALTIME), 1'000'000'000 * kNsPerSecond);
					EXPECT_LT(clock_ns(CLOCK_REALTIME), 4'000'000'000 * kNsPerSecond);
					// The latest time Linux lets one set (30 years of room below 2^63 ns).
					timespec latest{8'277'292'036, 0};
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &latest), 0);
					EXPECT_GE(clock_ns(CLOCK_REALTIME), to_ns(latest));
					++latest.tv_sec;
					EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &latest), -EINVAL);
					return 0;
				});
				pid_t pid = system.spawn("/bin/bad", {"bad"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(system.counters().clock_page_updates, 2u); // start, one settime
			},
			20, 2);
}

// One process sets REALTIME over and over, each time to MONOTONIC + kLow or + kHigh; another
// reads it meanwhile. What it reads must lie between what the setter could have set: at most
// kHigh ahead of MONOTONIC (a torn page pairing an old ref with a new base would read more),
// and not much less than kLow ahead.
void settime_race(bool page) {
	constexpr std::int64_t kLow = 3'000'000'000 * kNsPerSecond;
	constexpr std::int64_t kHigh = kLow + kNsPerSecond;
	constexpr std::int64_t kLatency = 60 * kNsPerSecond; // a generous bound on one request
	helsim::Machine machine{threads_mode()};
	px::System system{machine, quiet({.clock_page = page})};
	std::atomic<int> reads{0};
	auto set = [](std::int64_t offset) {
		std::int64_t when = monotonic_ns() + offset;
		timespec time{static_cast<time_t>(when / kNsPerSecond),
				static_cast<long>(when % kNsPerSecond)};
		EXPECT_EQ(px::clock_settime(CLOCK_REALTIME, &time), 0);
	};
	system.add_program("/bin/reader", [&](int, char **) {
		for (int i = 0; i < 2000; ++i) {
			std::int64_t m1 = monotonic_ns();
			std::int64_t real = clock_ns(CLOCK_REALTIME);
			std::int64_t m2 = monotonic_ns();
			EXPECT_LE(real - m2, kHigh) << "read " << i;
			EXPECT_GE(real - m1, kLow - kLatency) << "read " << i;
			reads.fetch_add(1, std::memory_order_relaxed);
		}
		return 0;
	});
	system.add_program("/bin/setter", [&](int, char **) {
		set(kLow); // before the reader starts: every value it can see is one of ours
		const char *args[] = {"reader", nullptr};
		EXPECT_GT(px::spawn("/bin/reader", args), 0);
		for (int i = 0; i < 2000; ++i)
			set(i % 2 ? kLow : kHigh);
		return 0;
	});
	pid_t setter = system.spawn("/bin/setter", {"setter"});
	expect_clean(machine.run());
	EXPECT_EQ(exit_code(system, setter), 0);
	EXPECT_EQ(reads.load(), 2000);
}

TEST(PosixClient, ConcurrentSettimeKeepsRealtimeWithinTheSetBounds) {
	settime_race(true);
	settime_race(false);
}

TEST(PosixClient, NanosleepWaitsAtLeastTheRequest) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				bool virtual_time = config.mode == helsim::Mode::deterministic;
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/sleep", [&](int, char **) {
					// Virtual time costs nothing to wait for: sleep for seconds there.
					timespec request =
							virtual_time ? timespec{2, 500'000'000} : timespec{0, 2'000'000};
					timespec remaining{7, 7};
					std::int64_t before = clock_ns(CLOCK_MONOTONIC);
					EXPECT_EQ(px::nanosleep(&request, &remaining), 0);
					std::int64_t after = clock_ns(CLOCK_MONOTONIC);
					EXPECT_GE(after - before, to_ns(request));
					EXPECT_EQ(remaining.tv_sec, 0);
					EXPECT_EQ(remaining.tv_nsec, 0);
					timespec zero{0, 0};
					EXPECT_EQ(px::nanosleep(&zero, nullptr), 0);
					if (virtual_time) {
						// "Forever" is 146 years, not a deadline that wrapped around into the
						// past: virtual time jumps there.
						timespec forever{std::numeric_limits<time_t>::max(), 999'999'999};
						before = clock_ns(CLOCK_MONOTONIC);
						EXPECT_EQ(px::nanosleep(&forever, nullptr), 0);
						EXPECT_GE(clock_ns(CLOCK_MONOTONIC) - before,
								100LL * 365 * 86'400 * kNsPerSecond);
					}
					return 0;
				});
				pid_t pid = system.spawn("/bin/sleep", {"sleep"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			20, 2);
}

} // namespace
