// Helpers the POSIX file tests share (test/posix/pipe_test.cpp, tmpfs_test.cpp, file_test.cpp):
// run programs on a fresh System and check what every test checks of the run, and send raw
// requests as the client shim would (src/posix/protocol.hpp), for what the calls cannot do.
#pragma once

#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/posix.hpp>
#include <helsim/testing.hpp>

#include "../../src/posix/protocol.hpp"

namespace helsim::posix::file_test {

// Options whose console output lands in `sink` (or nowhere), so that tests stay quiet.
inline Options quiet(Options options = {}, std::string *sink = nullptr) {
	options.console = [sink](std::string_view text) {
		if (sink)
			sink->append(text);
	};
	return options;
}

// An epoll_event's data.u64 by value: the struct is packed on x86-64, so the member is
// misaligned, and binding it to a reference (as EXPECT_EQ and std::map::operator[] do) is
// undefined behaviour that clang's UBSan reports.
inline std::uint64_t data_of(const epoll_event &event) { return event.data.u64; }

// The checks every run must pass: nothing stuck, leaked or pending.
inline void expect_clean(const RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
}

// Every process the System started (pids 1, 2, ...) exited normally with status 0.
inline void expect_all_exited_zero(const System &system) {
	auto started = static_cast<pid_t>(system.counters().processes_started);
	EXPECT_GT(started, 0);
	for (pid_t pid = 1; pid <= started; ++pid) {
		ASSERT_TRUE(system.has_exited(pid)) << "pid " << pid;
		int status = system.exit_status(pid);
		EXPECT_TRUE(WIFEXITED(status)) << "pid " << pid << " status " << status;
		EXPECT_EQ(WEXITSTATUS(status), 0) << "pid " << pid;
	}
}

using Programs = std::vector<std::pair<std::string, Main>>;

// Registers `programs`, spawns the first, runs the machine and checks the run and that every
// process exited with 0. Returns the System's counters at the end.
inline Counters run_programs(Machine &machine, const Programs &programs,
		Options options = quiet()) {
	System system{machine, std::move(options)};
	for (const auto &[path, main] : programs)
		system.add_program(path, main);
	system.spawn(programs.front().first, {programs.front().first});
	expect_clean(machine.run());
	expect_all_exited_zero(system);
	return system.counters();
}

inline Counters run_program(Machine &machine, Main main, Options options = quiet()) {
	return run_programs(machine, {{"/bin/test", std::move(main)}}, std::move(options));
}

// Deterministic mode with 1 to 4 simulated CPUs, as the seed decides (a replay of the seed
// gets the same count).
inline MachineConfig seeded(std::uint64_t seed) {
	return testing::deterministic(seed, static_cast<unsigned>(1 + seed % 4));
}

// The same program under every seed (deterministic mode), with `options`.
inline void run_each_seed(Main main, Options options = quiet(), std::uint64_t seeds = 20) {
	testing::for_each_seed(
			[&](std::uint64_t seed) {
				Machine machine{seeded(seed)};
				run_program(machine, main, options);
			},
			seeds);
}

inline void run_each_seed(const Programs &programs, Options options = quiet(),
		std::uint64_t seeds = 20) {
	testing::for_each_seed(
			[&](std::uint64_t seed) {
				Machine machine{seeded(seed)};
				run_programs(machine, programs, options);
			},
			seeds);
}

// In threads mode (the default MachineConfig), `rounds` times.
inline void in_threads(const Programs &programs, Options options = quiet(), int rounds = 3) {
	for (int round = 0; round < rounds; ++round) {
		SCOPED_TRACE("threads mode, round " + std::to_string(round));
		Machine machine;
		run_programs(machine, programs, options);
	}
}

inline void in_threads(Main main, Options options = quiet(), int rounds = 3) {
	in_threads(Programs{{"/bin/test", std::move(main)}}, std::move(options), rounds);
}

inline Options without_file_table() { return quiet(Options{.file_table = false}); }

// Every seed with the file table and without it: the same results either way.
inline void both_ways(const Programs &programs, std::uint64_t seeds = 20) {
	run_each_seed(programs, quiet(), seeds);
	run_each_seed(programs, without_file_table(), seeds);
}

inline void both_ways(Main main, std::uint64_t seeds = 20) {
	both_ways(Programs{{"/bin/test", std::move(main)}}, seeds);
}

// FNV-1a over bytes: a checksum the reader and the writer compute independently.
inline std::uint64_t fnv1a(std::uint64_t hash, const void *data, std::size_t size) {
	const auto *bytes = static_cast<const unsigned char *>(data);
	for (std::size_t i = 0; i < size; ++i) {
		hash ^= bytes[i];
		hash *= 0x100000001b3;
	}
	return hash;
}
inline constexpr std::uint64_t kFnvStart = 0xcbf29ce484222325;

// The byte at `index` of a test stream: not periodic in any power of two.
inline unsigned char pattern_byte(std::uint64_t index) {
	return static_cast<unsigned char>((index * 131 + (index >> 9) * 7 + 3) % 251);
}

// Writes all of `size` bytes (a pipe may take them in pieces); the count or a negative errno.
inline ssize_t write_all(int fd, const void *data, std::size_t size) {
	const auto *bytes = static_cast<const char *>(data);
	std::size_t done = 0;
	while (done < size) {
		ssize_t n = posix::write(fd, bytes + done, size - done);
		if (n <= 0)
			return n;
		done += static_cast<std::size_t>(n);
	}
	return static_cast<ssize_t>(done);
}

// Reads until `size` bytes or end of file; the count or a negative errno.
inline ssize_t read_all(int fd, void *data, std::size_t size) {
	auto *bytes = static_cast<char *>(data);
	std::size_t done = 0;
	while (done < size) {
		ssize_t n = posix::read(fd, bytes + done, size - done);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += static_cast<std::size_t>(n);
	}
	return static_cast<ssize_t>(done);
}

// argv for posix::spawn: the strings stay alive while the object does.
struct Argv {
	explicit Argv(std::vector<std::string> strings) : strings_{std::move(strings)} {
		for (auto &s : strings_)
			pointers_.push_back(s.c_str());
		pointers_.push_back(nullptr);
	}
	const char *const *get() const { return pointers_.data(); }

private:
	std::vector<std::string> strings_;
	std::vector<const char *> pointers_;
};

inline pid_t spawn(const std::string &path, std::vector<std::string> args) {
	Argv argv{std::move(args)};
	return posix::spawn(path.c_str(), argv.get());
}

// The lanes a raw request goes to, as the client shim finds them.
inline protocol::ProcessData process_data() {
	protocol::ProcessData data{};
	int call = static_cast<int>(kHelCallSuper) + static_cast<int>(protocol::kSuperGetProcessData);
	EXPECT_EQ(helSyscall1(call, reinterpret_cast<HelWord>(&data)), kHelErrNone);
	return data;
}

// Submits a write of `size` bytes to `fd` as the client shim would, without waiting for it.
inline void submit_raw_write(Dispatcher &queue, int fd, const void *bytes, std::size_t size) {
	using namespace ipc;
	protocol::ProcessData data = process_data();
	if (data.file_table) {
		protocol::FileRequest head{{protocol::kFileWrite, 0}, 0, 0, size, -1};
		submit(queue, data.file_table[fd], 1,
				offer(send_buffer(&head, sizeof head), imbue_credentials(),
						send_buffer(bytes, size), recv_inline()));
	} else {
		protocol::Request head{{protocol::kFdWrite, 0}, fd, static_cast<std::int64_t>(size), -1, 0};
		submit(queue, data.posix_lane, 1,
				offer(send_buffer(&head, sizeof head), imbue_credentials(),
						send_buffer(bytes, size), recv_inline()));
	}
	queue.flush();
}

// Waits for the answer to the request submit_raw_write() sent on `queue`.
inline protocol::Response wait_raw_write(Dispatcher &queue) {
	using namespace ipc;
	using Items = decltype(offer(send_buffer(nullptr, 0), imbue_credentials(),
			send_buffer(nullptr, 0), recv_inline()));
	Element element = queue.wait_for(1, [](Element &&) { ADD_FAILURE() << "another completion"; });
	auto results = parse<Items>(element);
	const InlineResult &reply = std::get<4>(results);
	EXPECT_EQ(reply.error, kHelErrNone);
	return protocol::decode<protocol::Response>(reply.data);
}

} // namespace helsim::posix::file_test
