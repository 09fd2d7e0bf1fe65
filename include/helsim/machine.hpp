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

struct MachineConfig {
	unsigned cpus = 2;
	Mode mode = Mode::threads;
	std::uint64_t seed = 0;
	std::size_t physical_memory = std::size_t{64} << 20;
	// Strict mode: the kernel accepts user pointers only into memory that the caller's
	// address space maps. By default host memory outside every space (stacks, heap) is also
	// accepted, read and written with a fault-safe copy, so tests can pass plain buffers.
	bool strict_memory = false;
	std::size_t stack_size = std::size_t{256} << 10;
	// Receives every helLog line. Default: "[thread] message" on stderr.
	// Called under the kernel's log lock: a sink must not call helLog itself.
	std::function<void(const LogRecord &)> log_sink{};
};

enum class ThreadOutcome {
	returned,   // the entry function returned
	panicked,   // helPanic
	threw,      // the entry function let a C++ exception escape
	blocked,    // still waiting when the machine got stuck
	not_started // created with kHelThreadStopped and never resumed
};

const char *to_string(ThreadOutcome outcome);

struct ThreadReport {
	std::string name;
	ThreadOutcome outcome;
	std::string message;  // panic text or exception what()
	std::string waits_on; // for blocked threads: what it waits on
};

struct LeakedObject {
	std::string kind;
	std::string description;
	std::int64_t references;
};

struct Counters {
	std::vector<std::pair<std::string, std::uint64_t>> syscalls; // calls made, by name
	std::uint64_t operations_submitted = 0;
	std::uint64_t operations_completed = 0;
	std::uint64_t completions_posted = 0;
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

class Machine;

// While alive, the host thread that created it is a simulated thread and may call hel
// functions; a blocking call blocks the host thread for real.
class Attachment {
public:
	Attachment(const Attachment &) = delete;
	Attachment &operator=(const Attachment &) = delete;
	~Attachment();

private:
	friend class Machine;
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
	// receives the new handles in the same order.
	void spawn(std::string name, Entry entry, std::initializer_list<HelHandle> handles = {});
	void spawn(std::string name, Entry entry, std::span<const HelHandle> handles);

	// Makes the calling host thread a simulated thread (see AttachOptions).
	[[nodiscard]] std::unique_ptr<Attachment> attach(AttachOptions options = {});

	// Waits until every fiber thread has ended, or until the machine is stuck, and reports.
	// Must be called from a host thread that is not attached.
	RunReport run();

	kernel::Kernel &kernel_for_extensions();

private:
	std::unique_ptr<sim::Host> host_;
	std::unique_ptr<kernel::Kernel> kernel_;
	struct Root;
	std::unique_ptr<Root> root_;
};

namespace debug {
// The raw x86-64 page table entry (present, writable, user, accessed, dirty and no-execute
// bits and the frame) behind `address` in the calling simulated thread's address space; 0
// when no entry exists. For tests and tools that check what the kernel's truth says.
std::uint64_t page_table_entry(const void *address);
} // namespace debug

} // namespace helsim
