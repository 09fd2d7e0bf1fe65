// What the host side (System) and the server share: registered programs, the spawns the host
// asked for, exit statuses, counters and the tmpfs, which outlives a server that stopped
// because its last process exited.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <helsim/machine.hpp>
#include <helsim/posix.hpp>

namespace helsim::posix::detail {

class Tmpfs;

// What a process's entry runs; the strings live as long as the process.
struct Launch {
	Main main;
	std::vector<std::string> args;
	std::vector<char *> argv; // pointers into args, then nullptr
	void set_args(std::vector<std::string> strings) {
		args = std::move(strings);
		argv.clear();
		for (auto &a : args)
			argv.push_back(a.data());
		argv.push_back(nullptr);
	}
};

struct PendingSpawn {
	pid_t pid;
	std::string path;
	std::vector<std::string> argv;
};

struct AtomicCounters {
	std::atomic<std::uint64_t> server_requests{0};
	std::atomic<std::uint64_t> supercalls{0};
	std::atomic<std::uint64_t> passthrough_requests{0};
	std::atomic<std::uint64_t> forwarded_requests{0};
	std::atomic<std::uint64_t> client_submissions{0};
	std::atomic<std::uint64_t> processes_started{0};
	std::atomic<std::uint64_t> processes_exited{0};
	std::atomic<std::uint64_t> clock_page_updates{0};
	std::atomic<std::uint64_t> signals_sent{0};
	std::atomic<std::uint64_t> signals_delivered{0};
	std::atomic<std::uint64_t> interrupts{0};
	std::atomic<std::uint64_t> alerts{0};
	std::atomic<std::uint64_t> cancellations{0};
	std::atomic<std::uint64_t> forks{0};
	std::atomic<std::uint64_t> execs{0};
	std::atomic<std::uint64_t> fork_pages_copied{0};
	std::atomic<std::uint64_t> status_page_reads{0};
	std::atomic<std::uint64_t> device_poll_requests{0};

	Counters snapshot() const;
	static void bump(std::atomic<std::uint64_t> &counter) {
		counter.fetch_add(1, std::memory_order_relaxed);
	}
};

} // namespace helsim::posix::detail

namespace helsim::posix {

struct System::State : std::enable_shared_from_this<System::State> {
	State(Machine &machine, Options options);
	~State();

	Machine &machine;
	Options options;
	detail::AtomicCounters counters;
	std::unique_ptr<detail::Tmpfs> tmpfs;

	// Guards everything below; the server takes it briefly (never across a hel call).
	mutable std::mutex mutex;
	std::map<std::string, Main> programs;
	std::map<std::string, std::shared_ptr<Device>> devices; // System::add_device
	std::deque<detail::PendingSpawn> pending;
	std::atomic<bool> spawns_pending{false};      // set with `pending` non-empty, under the mutex
	std::map<pid_t, std::optional<int>> statuses; // every pid ever given; a value once exited
	pid_t next_pid = 1;
	bool server_running = false;
	// CLOCK_REALTIME - helGetClock, kept across server restarts (clock_settime moves it).
	std::int64_t realtime_offset = 0;

	// Options::inline_supercalls: the tid of each process thread by its credentials, for the
	// host callback; the server writes it, the callback reads it on the calling thread.
	mutable std::shared_mutex inline_mutex;
	std::map<std::array<char, 16>, pid_t> tids;
	void answer_supercalls_inline();

	pid_t allocate_pid();
	Main program(const std::string &path) const; // empty if unknown
	void start_server();                         // with the mutex held
	// The server could not start (its queue or its clock page could not be made): every
	// pending spawn is reported as a program that could not be started (status 127), and the
	// next spawn starts a server again.
	void server_failed();
};

} // namespace helsim::posix
