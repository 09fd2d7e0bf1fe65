// helsim's C++ host API: configure a simulated machine, start simulated threads in their own
// universes, attach host threads, run to completion and read the report.
#pragma once

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

namespace helsim {

namespace kernel {
class Kernel;
class Thread;
} // namespace kernel
namespace sim {
class Host;
class TraceRecorder;
} // namespace sim

enum class Mode {
	threads,       // one host thread per simulated CPU, real parallelism
	deterministic, // run() drives every CPU on the calling thread; seeded, virtual time
};

struct LogRecord {
	int severity;            // HelLogSeverity
	std::string_view thread; // name of the simulated thread that logged
	std::string_view message;
};

// Size of the syscall table: built-in calls use numbers below kHelNumCalls, extensions
// register numbers in [kFirstExtensionSyscall, kSyscallSlots).
inline constexpr std::size_t kSyscallSlots = 512;
inline constexpr std::uint32_t kFirstExtensionSyscall = 256;

// What simulated work costs in virtual time. Deterministic mode charges these figures to its
// virtual clock (RunReport::simulated_time_ns, helGetClock); threads mode runs in real time
// and ignores them. Defaults are plausible for Managarm on a ~3 GHz x86-64 core.
struct CostModel {
	// Entering and leaving the kernel once (SYSCALL/SYSRET, entry stub, dispatch), charged on
	// every helsim syscall.
	std::uint64_t syscall_ns = 100;
	// Switching a CPU from one thread to another (register state, FPU, address space).
	std::uint64_t context_switch_ns = 200;
	// Waking a thread whose CPU is not the waker's: the IPI and the remote CPU's reaction.
	std::uint64_t cross_cpu_wake_ns = 1000;
	// A kernel copy of user memory, per byte, in picoseconds (100 ps/byte = 10 GB/s).
	std::uint64_t copy_ps_per_byte = 100;
	// Walking the page tables once per page the kernel accesses in user memory.
	std::uint64_t page_walk_ns = 30;
	// A resolved page fault (kernel copy or host access): trap, lookup, frame, PTE update.
	std::uint64_t page_fault_ns = 1000;
};

// Faults helsim injects on purpose, to test that code survives them. Rates are in parts per
// million; every decision is drawn from a generator seeded with MachineConfig::seed, so a
// deterministic run injects the same faults every time. Nothing injected crashes helsim or
// loses a completion: each fault is one the real kernel may also produce.
struct FaultInjection {
	// A frame allocation fails: the memory object, page table or queue that needed it
	// reports kHelErrNoMemory.
	std::uint32_t no_memory_ppm = 0;
	// helFutexWait returns kHelErrNone although nobody woke it (callers re-check the word).
	std::uint32_t spurious_wakeup_ppm = 0;
	// An operation's completion reaches its queue `completion_delay_ns` later than it would
	// (other completions may overtake it, as they may on Managarm).
	std::uint32_t delay_completion_ppm = 0;
	std::uint64_t completion_delay_ns = 10'000;
};

struct MachineConfig {
	unsigned cpus = 2;
	Mode mode = Mode::threads;
	std::uint64_t seed = 0;
	// Deterministic mode: the chance, in parts per million, that a thread's syscall entry
	// (and, separately, its exit) is a scheduling decision: the seed may let another thread
	// run first. Switch-outs (blocking, yielding, ending) always are decisions. Attached
	// threads take part like fibers: they hand the baton on.
	std::uint32_t preempt_at_syscall_ppm = 125'000;
	// Deterministic mode: the chance that a wake-up or a posted completion lets the woken
	// side run first: the thread that caused it gives up its CPU at its next syscall entry
	// or exit (as a kernel's need-resched flag on a wake-up).
	std::uint32_t preempt_at_wake_ppm = 125'000;
	std::size_t physical_memory = std::size_t{64} << 20;
	// Strict mode: the kernel accepts user pointers only into memory that the caller's
	// address space maps. By default host memory outside every space (stacks, heap) is also
	// accepted, read and written with a fault-safe copy, so tests can pass plain buffers.
	bool strict_memory = false;
	// Virtual-time costs (deterministic mode only; see CostModel).
	CostModel costs{};
	// Deliberate faults (off by default); see FaultInjection.
	FaultInjection inject{};
	std::size_t stack_size = std::size_t{256} << 10;
	// Record a trace (syscalls, running slices, wakes, flows, faults, lane events) for
	// Machine::write_trace / trace_json; see docs/tracing.md. Off by default: then each
	// hook costs one predictable branch and nothing is recorded.
	bool trace = false;
	// Receives every helLog line. Default: "[thread] message" on stderr.
	// Called under the kernel's log lock: a sink must not call helLog itself.
	std::function<void(const LogRecord &)> log_sink{};
};

enum class ThreadOutcome {
	returned,    // the entry function returned
	panicked,    // helPanic
	threw,       // the entry function let a C++ exception escape
	blocked,     // still waiting when the machine got stuck
	not_started, // created with kHelThreadStopped and never resumed
	killed,      // helKillThread, or its last handle closed
	faulted      // a fault nothing resolved (a bad pointer, ud2, a division by zero, ...)
};

const char *to_string(ThreadOutcome outcome);

struct ThreadReport {
	std::string name;
	ThreadOutcome outcome;
	std::string message;  // panic text, exception what(), or what faulted where
	std::string waits_on; // for blocked threads: what it waits on
};

struct LeakedObject {
	std::string kind;
	std::string description;
	std::int64_t references;
};

struct ObjectCount {
	std::string kind;          // "queue", "lane", "stream", ...
	std::uint64_t created = 0; // over the machine's lifetime
	std::uint64_t live = 0;    // when the report was made
};

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

// Thrown out of helPanic on an attached host thread (a fiber thread just ends, panicked).
class PanicError : public std::runtime_error {
public:
	using std::runtime_error::runtime_error;
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
