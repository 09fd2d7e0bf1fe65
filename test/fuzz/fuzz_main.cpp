// helsim_fuzz: libFuzzer's entry. Each input is one machine running the interpreter's
// program; afterwards the invariants of issue 18 are checked, and a violation traps so that
// libFuzzer keeps the input (docs/testing.md, "Fuzzing").
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <helsim/machine.hpp>

#include "interpreter.hpp"

namespace {

using namespace helsim;

// Threads mode has no stuck detection: a run that does not end within the limit is a hang,
// reported as a crash so that libFuzzer saves the input. Deterministic runs report stuck
// themselves; the limit there only catches a livelock.
class Watchdog {
public:
	explicit Watchdog(std::chrono::seconds limit) : thread_{[this, limit] { watch(limit); }} {}
	Watchdog(const Watchdog &) = delete;
	Watchdog &operator=(const Watchdog &) = delete;
	~Watchdog() {
		{
			std::lock_guard lock{mutex_};
			ended_ = true;
		}
		cv_.notify_one();
		thread_.join();
	}

private:
	void watch(std::chrono::seconds limit) {
		std::unique_lock lock{mutex_};
		if (cv_.wait_for(lock, limit, [this] { return ended_; }))
			return;
		std::fprintf(stderr, "helsim_fuzz: hang: the run did not end within %lld s\n",
				static_cast<long long>(limit.count()));
		__builtin_trap();
	}

	std::mutex mutex_;
	std::condition_variable cv_;
	bool ended_ = false;
	std::thread thread_;
};

[[noreturn]] void fail(const std::string &what, const RunReport &report) {
	std::fprintf(stderr, "helsim_fuzz: invariant violated: %s\n%s\n", what.c_str(),
			report.to_string().c_str());
	__builtin_trap();
}

// What an operation waiting for a pager keeps alive: its queue (and the queue's memory), the
// managed memory it waits on and the address space it reaches that memory through. Such operations
// stay pending when no pager serves the memory (the harness's pager ended or the program closed its
// thread handle; managed memory the program created has none), as
// ManagedMemory.APendingManageOperationIsReportedNotLost documents: they cannot be cancelled.
bool kept_by_pager_operation(const LeakedObject &leak) {
	return leak.kind == "queue" || leak.description == "allocated memory" ||
			leak.description == "address space" || leak.description.starts_with("managed memory");
}

void check(const RunReport &report, fuzz::Findings &findings) {
	for (const auto &v : findings.violations)
		fail(v, report);
	// A thread that touches managed memory nobody serves waits for good, as on Managarm: the
	// program can take the pager's backing handle away, or map managed memory over the
	// harness's own words. Only that way of getting stuck is accepted.
	auto waits_for_pager = [](const ThreadReport &t) {
		return t.outcome == ThreadOutcome::blocked && t.waits_on.starts_with("pager");
	};
	bool stuck_on_pager =
			std::any_of(report.threads.begin(), report.threads.end(), waits_for_pager);
	if (report.stuck && !stuck_on_pager)
		fail("the machine got stuck", report);
	for (const auto &t : report.threads)
		switch (t.outcome) {
		case ThreadOutcome::returned:
		case ThreadOutcome::killed:
		case ThreadOutcome::not_started:
		// The program may unmap or protect the memory its own thread then touches.
		case ThreadOutcome::faulted: break;
		case ThreadOutcome::blocked:
			if (waits_for_pager(t))
				break;
			fail("thread " + t.name + " blocked on " + t.waits_on, report);
		default:
			fail("thread " + t.name + " ended " + to_string(t.outcome) + ": " + t.message, report);
		}
	if (report.counters.operations_completed > report.counters.operations_submitted)
		fail("more operations completed than were submitted", report);
	// Pending operations are accepted only in that shape: some managed memory outlives the run
	// and nothing else does but queues, their memory and address spaces. A stuck machine lists
	// no leaks (Machine::run walks the objects only once every thread ended), so there a thread
	// waiting for a pager is what shows the unserved managed memory.
	std::uint64_t pending = report.operations_pending();
	auto is_managed = [](const LeakedObject &l) {
		return l.description.starts_with("managed memory");
	};
	bool unpaged =
			stuck_on_pager || std::any_of(report.leaks.begin(), report.leaks.end(), is_managed);
	if (pending != 0 && !unpaged && pending > findings.undeliverable)
		fail(std::to_string(pending) + " operations never completed", report);
	for (const auto &leak : report.leaks)
		if (!unpaged || !kept_by_pager_operation(leak))
			fail("kernel object leaked: " + leak.kind + " " + leak.description, report);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
	auto program = fuzz::Program::parse({data, size});
	MachineConfig config;
	config.cpus = 2;
	config.mode = program.deterministic ? Mode::deterministic : Mode::threads;
	config.seed = program.seed;
	// Only mapped memory is user memory: a wild pointer must fault in the kernel's copy, not
	// land in the harness's own host memory.
	config.strict_memory = true;
	config.log_sink = [](const LogRecord &) {};
	fuzz::Findings findings;
	RunReport report;
	{
		Machine machine{config};
		auto tables = fuzz::CallTables::of(machine);
		auto state = fuzz::start(machine, program, tables, findings);
		Watchdog watchdog{std::chrono::seconds{program.deterministic ? 60 : 20}};
		report = machine.run();
	}
	check(report, findings);
	return 0;
}
