// helsim's C++ host API: configure a simulated machine, start simulated threads in their own
// universes, attach host threads, run to completion and read the report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine_config.hpp>

namespace helsim {

namespace kernel {
class Kernel;
class Thread;
} // namespace kernel
namespace sim {
class Host;
class TraceRecorder;
} // namespace sim

struct Counters {
	std::vector<std::pair<std::string, std::uint64_t>> syscalls; // calls made, by name
	std::uint64_t operations_submitted = 0;
	std::uint64_t operations_completed = 0;
	std::uint64_t completions_posted = 0;
	std::vector<ObjectCount> objects;     // kernel objects by kind (kinds never created omitted)
	std::uint64_t page_faults_kernel = 0; // faults resolved on the kernel path (copies, pins)
	std::uint64_t page_faults_host = 0;   // user code touched an absent page (host SIGSEGV)
	std::uint64_t context_switches = 0;   // fibers switched in on a CPU
	std::uint64_t injected_no_memory = 0; // FaultInjection: frame allocations failed on purpose
	std::uint64_t injected_wakeups = 0;   // FaultInjection: spurious futex wake-ups
	std::uint64_t injected_delays = 0;    // FaultInjection: delayed completions
	// FaultInjection::fail_at: passes through each FaultPoint on behalf of simulated threads,
	// and how many of them failed on purpose.
	std::array<std::uint64_t, kFaultPoints> fault_point_passes{};
	std::uint64_t injected_fail_at = 0;
	std::uint64_t passes(FaultPoint point) const {
		return fault_point_passes[static_cast<std::size_t>(point)];
	}

	// An aligned, printable table: syscalls by name, object kinds, then the rest.
	std::string to_table() const;
};

struct RunReport {
	bool stuck = false; // nothing could run any more while threads still waited
	std::vector<ThreadReport> threads;
	std::vector<LeakedObject> leaks; // objects alive after every simulated thread ended
	Counters counters;
	// Deterministic mode: FNV-1a hash of every scheduling decision (CPU, thread name, virtual
	// time), accumulated over the machine's lifetime. Same seed and workload, same hash.
	// Always 0 in threads mode.
	std::uint64_t trace_hash = 0;
	// Deterministic mode: the virtual time when run() returned, in nanoseconds (the cost
	// model's charges plus the jumps over idle time to timers). Threads mode: the host's
	// monotonic time elapsed since the Machine was constructed.
	std::uint64_t simulated_time_ns = 0;

	std::uint64_t operations_pending() const {
		return counters.operations_submitted - counters.operations_completed;
	}
	// A human-readable summary: outcomes, counters, leaks, blocked threads.
	std::string to_string() const;
};

using Entry = std::function<void(std::span<const HelHandle>)>;

struct AttachOptions {
	std::string name = "host";
	// Handles in the machine's root universe; kHelNullHandle = the root universe / space.
	HelHandle universe = kHelNullHandle;
	HelHandle space = kHelNullHandle;
	bool new_universe = false; // a fresh, empty universe instead of `universe`
	bool new_space = false;    // a fresh address space instead of `space`
};

// While a TraceCapture is alive, every Machine the process constructs records a trace (as
// with MachineConfig::trace) and writes it when it is destroyed: the first one to
// `<prefix>.json`, later ones to `<prefix>-2.json`, `<prefix>-3.json`, ... helsim/testing.hpp's
// seed loop uses it to trace the replay of a failing seed without the test's help. At most
// one is alive at a time. A file that cannot be written is recorded in errors(), not thrown
// (it happens in ~Machine).
class TraceCapture {
public:
	// Throws std::logic_error if another TraceCapture is alive.
	explicit TraceCapture(std::string prefix);
	TraceCapture(const TraceCapture &) = delete;
	TraceCapture &operator=(const TraceCapture &) = delete;
	~TraceCapture();

	// The files written so far, in the order the machines were destroyed.
	std::vector<std::string> files() const;
	// One line per file that could not be written.
	std::vector<std::string> errors() const;
	// Machines constructed while this capture was alive.
	std::size_t machines() const;

	struct State;

private:
	std::shared_ptr<State> state_;
};

class Machine;
namespace detail {
struct Hosting; // src/hosted.cpp: helsim::hosted's access to the machine
} // namespace detail

// While alive, the host thread that created it is a simulated thread and may call hel
// functions; a blocking call blocks the host thread for real.
class Attachment {
public:
	Attachment(const Attachment &) = delete;
	Attachment &operator=(const Attachment &) = delete;
	~Attachment();

private:
	friend class Machine;
	friend struct detail::Hosting;
	explicit Attachment(kernel::Thread *thread) : thread_{thread} {}
	kernel::Thread *thread_;
};

class Machine {
public:
	explicit Machine(MachineConfig config = {});
	Machine(const Machine &) = delete;
	Machine &operator=(const Machine &) = delete;
	~Machine();

	const MachineConfig &config() const;

	// A new universe, address space and fiber thread running `entry`. `handles` name
	// descriptors of the caller's universe (the root universe when the caller is not a
	// simulated thread); each is copied into the new universe with its rights, and the entry
	// receives the new handles in the same order. Throws std::invalid_argument for a handle
	// that is not open, and std::bad_alloc, whose what() says what ran out, when the host has
	// no memory or mappings left for the thread's stack (helCreateThread: kHelErrNoMemory).
	void spawn(std::string name, Entry entry, std::initializer_list<HelHandle> handles = {});
	void spawn(std::string name, Entry entry, std::span<const HelHandle> handles);

	// Makes the calling host thread a simulated thread (see AttachOptions).
	[[nodiscard]] std::unique_ptr<Attachment> attach(AttachOptions options = {});

	// Waits until every fiber thread has ended, or until the machine is stuck, and reports.
	// Must be called from a host thread that is not attached.
	RunReport run();

	// The hardware access token (thor's hardwareAccessToken()): a handle, with Invoke, in the
	// machine's root universe. helAccessPhysical, helAccessIo and helAccessIrq accept only
	// this token; hand it to a driver with spawn(name, entry, {hardware_access_token()}). The
	// first call creates it; later calls return the same handle.
	HelHandle hardware_access_token();

	kernel::Kernel &kernel_for_extensions();

	// The trace recorded so far as Chrome trace-event JSON (MachineConfig::trace; without it
	// a valid document with no events). Perfetto UI opens it; see docs/tracing.md. Call it
	// when no simulated thread runs (after run()) for a complete picture.
	std::string trace_json() const;
	// trace_json() into a file; throws std::runtime_error if it cannot be written.
	void write_trace(const std::string &path) const;
	// Events recorded so far (0 when tracing is off).
	std::size_t trace_event_count() const;

private:
	friend struct detail::Hosting;
	// An attached thread object for `options`, not yet attached to any host thread.
	kernel::Thread *make_attached_thread(AttachOptions options);
	std::unique_ptr<Attachment> finish_attach(kernel::Thread *thread);

	// First member: the recorder outlives the host and the kernel, whose teardown still
	// reports events.
	std::unique_ptr<sim::TraceRecorder> trace_;
	std::unique_ptr<sim::Host> host_;
	std::unique_ptr<kernel::Kernel> kernel_;
	struct Root;
	std::unique_ptr<Root> root_;
	// Set when a TraceCapture was alive at construction: ~Machine writes the trace there.
	std::shared_ptr<TraceCapture::State> capture_;
	std::string capture_path_;
};

namespace debug {
// The raw x86-64 page table entry (present, writable, user, accessed, dirty and no-execute
// bits and the frame) behind `address` in the calling simulated thread's address space; 0
// when no entry exists. For tests and tools that check what the kernel's truth says.
std::uint64_t page_table_entry(const void *address);
} // namespace debug

} // namespace helsim
