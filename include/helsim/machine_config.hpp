// The configuration of a simulated machine and the records its kernel reports: the types
// both the kernel (src/kernel) and the host API (machine.hpp, which includes this header) speak
// in. Nothing here needs a Machine.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace helsim {

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

// The places where FaultInjection::fail_at fails one chosen pass (docs/testing.md, "Fault
// sweeps"). Each failure is an allocation the real kernel may also see fail, and surfaces as
// kHelErrNoMemory from the call or operation that needed it.
enum class FaultPoint : unsigned {
	// A range of physical frames: memory objects' pages, copy-on-write copies, page tables,
	// queue rings. A direct user access to such a page faults (as with no_memory_ppm).
	frame_allocation,
	// A kernel object of any kind, built-in or extension (ext::Caller::create).
	object_creation,
	// A universe's handle table takes a new segment: its first handle, then every 1024th.
	handle_table_growth,
	// The memory a new queue's chunks live in (helCreateQueue).
	queue_chunks,
};
inline constexpr std::size_t kFaultPoints = 4;
const char *to_string(FaultPoint point);

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
	// Deterministic failures, for sweeps: fail_at[point] = k fails exactly the k-th pass (from
	// 1) through that FaultPoint made on behalf of a simulated thread; 0 fails none. The
	// machine's set-up and the host's own calls (spawn, attach) are not passes.
	// RunReport::counters.fault_point_passes tells a sweep how many passes a run made.
	std::array<std::uint64_t, kFaultPoints> fail_at{};
	std::uint64_t &at(FaultPoint point) { return fail_at[static_cast<std::size_t>(point)]; }
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

// Thrown out of helPanic on an attached host thread (a fiber thread just ends, panicked).
class PanicError : public std::runtime_error {
public:
	using std::runtime_error::runtime_error;
};

} // namespace helsim
