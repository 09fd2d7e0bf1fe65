// The one interface between the simulated kernel and what is under it (the idea of LKL's
// host-operations table). src/kernel includes this header and nothing else from sim/, and
// reaches the host only through what it declares (scripts/check-layering.sh keeps it so):
//
// - Host: one simulated machine. The kernel schedules, sleeps, keeps time, arms timers and
//   reaches physical memory only through it.
// - HostOperations: what the kernel asks of the host operating system itself, where no
//   machine is at hand (a spinlock's back-off, a universe's handle directory): address space
//   reservations, futex-style sleep and wake on a word, giving up the host CPU, fault-window
//   registration. One process-wide table, replaceable while no machine exists (tests).
// - safe_copy() and safe_load_u32() (host_faults.hpp): the fault-safe routines, called
//   directly because every user copy takes one, and they are asm tied to the fault handler.
// - The types these speak in: Task (task.hpp), PhysicalMemory, TraceRecorder, FaultResolver.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "host_faults.hpp"
#include "physical_memory.hpp"
#include "task.hpp"
#include "trace.hpp"

namespace helsim::sim {

inline constexpr std::uint64_t kNoDeadline = ~std::uint64_t{0};

// A one-shot timer. fire() runs on some scheduler context once `deadline` has passed; it must
// not block. A timer is armed at most once at a time.
class Timer {
public:
	virtual ~Timer() = default;
	virtual void fire() = 0;
	// The machine is shutting down with this timer still armed: release what it holds.
	virtual void abandon() {}

	std::uint64_t deadline = kNoDeadline;

private:
	friend class TimerQueue;
	std::multimap<std::uint64_t, Timer *>::iterator position_{};
	bool armed_ = false;
};

// Something a plain host thread (no task of the machine, not its scheduler) will hand the
// machine later: an extension's operation that such a thread completes. From Host::expect()
// until Host::forget() it counts as activity, as an armed timer does, so that a machine whose
// threads wait for it is not stuck. The owner keeps it alive until forget().
struct OutsideDelivery; // deterministic_host.cpp
class OutsideWork {
private:
	friend class DeterministicHost;
	// Deterministic mode's list of expected work, oldest first, and the delivery a host
	// thread waits in (Host::deliver), all guarded by the host's lock for outside work.
	OutsideWork *next_ = nullptr;
	OutsideWork *prev_ = nullptr;
	OutsideDelivery *delivery_ = nullptr;
	bool forgotten_ = false;
};

// What the kernel asks of the host operating system (see the top of this file). Every entry
// is set; the memory entries take page-aligned addresses and sizes.
struct HostOperations {
	// `size` bytes of address space, inaccessible and committed to nothing, or nullptr when
	// the host refuses (out of address space or mappings).
	void *(*reserve)(std::size_t size);
	// `size` bytes of zeroed read/write memory, committed page by page on first touch, or
	// nullptr when the host refuses.
	void *(*allocate)(std::size_t size);
	// Puts an inaccessible reservation back over [at, at + size), inside a range reserve()
	// gave, dropping what was mapped there. False when the host refuses (out of mappings).
	bool (*reset)(void *at, std::size_t size);
	// Returns what reserve() or allocate() gave.
	void (*release)(void *at, std::size_t size);
	// Blocks the calling host thread while `word` holds `expected`; may return spuriously.
	void (*wait_word)(const std::atomic<std::uint32_t> &word, std::uint32_t expected);
	// Wakes every host thread blocked in wait_word() on `word`.
	void (*wake_word)(std::atomic<std::uint32_t> &word);
	// Gives the host CPU to another host thread (a spinning waiter backs off with it).
	void (*yield_cpu)();
	// Fault windows (host_faults.hpp: register_window, unregister_window).
	void (*register_window)(std::uintptr_t base, std::size_t size, FaultResolver *resolver);
	void (*unregister_window)(std::uintptr_t base);
};

// The operations of the host helsim runs on (Linux).
const HostOperations &native_host_operations();

namespace detail {
extern std::atomic<const HostOperations *> host_operations;
} // namespace detail

// The table in use: native_host_operations() unless a test replaced it.
inline const HostOperations &host_operations() {
	return *detail::host_operations.load(std::memory_order_relaxed);
}
// Replaces the table and returns the one in use before. Only while no machine exists and no
// kernel object is alive: what one table reserved, the same table must release.
const HostOperations &replace_host_operations(const HostOperations &operations);

// The task running on this host thread (fiber or attached host thread), or nullptr.
Task *current_task();
// Host implementations only: records which task this host thread is running.
void set_current_task(Task *task);

// A hel call came from a host thread that is no task of any machine. The first time on each
// host thread, one line on stderr names the call, the thread (its name and tid) and the fix;
// later calls from that thread stay quiet. Returns the thread's description.
const std::string &report_call_outside_simulation(std::string_view call);
// While alive, calls from outside simulation on this host thread report nothing: the machine's
// teardown unwinds blocked fibers on its own thread, and their destructors' hel calls (which
// fail with kHelErrIllegalState there) are no mistake of the program.
class QuietOutsideCalls {
public:
	QuietOutsideCalls();
	~QuietOutsideCalls();
	QuietOutsideCalls(const QuietOutsideCalls &) = delete;
	QuietOutsideCalls &operator=(const QuietOutsideCalls &) = delete;
};

class Host {
public:
	virtual ~Host() = default;

	unsigned cpu_count() const { return static_cast<unsigned>(std::popcount(cpu_mask_)); }
	// Nanoseconds since the machine started (monotonic).
	virtual std::uint64_t now() = 0;

	// Makes a new fiber task (its fiber created: Task::create_fiber) runnable; its body runs
	// on a CPU allowed by its affinity.
	virtual void start(Task &task) = 0;
	// Blocks the calling task until unpark() or until `deadline` (kNoDeadline = never).
	// May return spuriously; callers re-check what they wait for.
	virtual void park(Task &self, std::uint64_t deadline) = 0;
	virtual void unpark(Task &task) = 0;
	// Puts the calling task behind the other runnable tasks of its priority (and moves it to
	// an allowed CPU if its affinity changed).
	virtual void yield(Task &self) = 0;

	// Makes the calling host thread a task of this machine, or stops being one.
	virtual void attach(Task &task) = 0;
	virtual void detach(Task &task) = 0;
	// Hosting (src/hosted.cpp): the running attached task is about to create a host thread
	// that will attach as `task`. Deterministic mode queues `task` now, so that the order of
	// creation, not the host's scheduling, decides when it first runs; attach_prepared, on
	// the new host thread, then waits for that turn. Threads mode attaches at once.
	virtual void prepare_attach(Task &task) { (void)task; }
	virtual void attach_prepared(Task &task) { attach(task); }
	// The host thread was not created after all: `task` never attaches.
	virtual void cancel_prepared(Task &task) { (void)task; }
	// Hosting: the running attached task blocks in the host (pthread_join) until something
	// unpark()s it; deterministic mode lets the others run meanwhile, and end_host_wait waits
	// for the task's next turn once the host call returned.
	virtual void begin_host_wait(Task &self) { (void)self; }
	virtual void end_host_wait(Task &self) { (void)self; }

	virtual void arm(Timer &timer) = 0;
	// True if the timer was disarmed before it fired.
	virtual bool disarm(Timer &timer) = 0;
	// Runs `callback` once, on some scheduler context (no simulated thread runs it), `delay_ns`
	// from now, or drops it if the machine shuts down first: a one-shot timer that owns itself.
	void call_after(std::uint64_t delay_ns, std::function<void()> callback);

	// Outside work (OutsideWork). expect(), on the machine's schedule, counts `work` as
	// activity; forget() ends that, once, where the work ended or was given up (a completion,
	// a cancellation, the teardown): on the machine's schedule, at teardown, or in threads
	// mode in the host thread's deliver().
	virtual void expect(OutsideWork &work) {
		(void)work;
		activity_add(1);
	}
	virtual void forget(OutsideWork &work) {
		(void)work;
		activity_add(-1);
	}
	// Runs `delivery`, which ends `work` (and so forgets it) unless something ended it first,
	// on the machine's behalf. Threads mode: at once, on the calling thread. Deterministic mode,
	// from a plain host thread: at the machine's next idle point (nothing runnable, no timer
	// armed), where the scheduler waits for the oldest expected work; the calling thread
	// blocks until then, and returns without running `delivery` if the work is forgotten
	// first. So the schedule is the same whenever the host thread calls this.
	virtual void deliver(OutsideWork &work, const std::function<void()> &delivery) {
		(void)work;
		delivery();
	}

	virtual PhysicalMemory &physical_memory() = 0;

	// Called by Machine::run() on its own (unattached) host thread: returns once `done()`
	// holds or nothing can run any more. Threads mode waits for the CPUs; deterministic mode
	// runs the fibers on the calling thread.
	virtual void run_until(const std::function<bool()> &done) = 0;
	// Stops the machine: no task runs afterwards; armed timers are abandoned.
	virtual void shutdown() = 0;
	// Identifies the schedule of a deterministic run; 0 where scheduling is not recorded.
	virtual std::uint64_t trace_hash() const { return 0; }
	// Context switches made so far (a fiber switched in on a CPU).
	virtual std::uint64_t context_switches() const { return 0; }
	// Fills `size` bytes with random bytes (helGetRandomBytes): the host's entropy, or in a
	// deterministic run a stream of its own drawn from the seed, so that a replay gets the
	// same bytes and drawing them does not change the schedule.
	virtual void random_bytes(void *buffer, std::size_t size);

	// The trace recorder, or nullptr when tracing is off (the usual case: every hook is one
	// branch on this pointer). Set once, before anything runs; the Machine owns it.
	TraceRecorder *tracer() const { return tracer_; }
	void set_tracer(TraceRecorder *tracer) { tracer_ = tracer; }

	// The cost model: charges `ns` (or `ps` picoseconds) of virtual time to the running work.
	// Deterministic mode advances its clock; threads mode keeps real time and does nothing
	// (one predictable branch, no call).
	void charge(std::uint64_t ns) {
		if (charges_time_) [[unlikely]]
			advance_ps(ns * 1000);
	}
	void charge_ps(std::uint64_t ps) {
		if (charges_time_) [[unlikely]]
			advance_ps(ps);
	}
	bool charges_time() const { return charges_time_; }
	// `self` is at a syscall's entry or exit (called only where charges_time(): deterministic
	// mode); the host may schedule another thread first.
	virtual void scheduling_point(Task &self) { (void)self; }
	// The running work just did something another thread may want to react to first: it
	// posted a completion (a wake-up is one too, noted by unpark itself). Deterministic mode
	// lets the seed decide whether the running thread gives up its CPU at its next safe
	// point, a syscall's entry or exit, as a kernel sets need-resched on a wake-up.
	void scheduling_event() {
		if (charges_time_) [[unlikely]]
			note_scheduling_event();
	}

	// How long `task` has run on a simulated CPU (an attached thread: how long it was attached
	// and not parked), in nanoseconds. `running` says the task is running now, on the calling
	// host thread, so that its current run counts too; another task's count stops at the end
	// of its last completed run.
	std::uint64_t run_time_ns(const Task &task, bool running);

	// Activity = runnable or running tasks + armed timers. Zero while simulated threads are
	// still alive means nothing can ever wake them: the machine is stuck.
	std::int64_t activity() const { return activity_.load(std::memory_order_seq_cst); }
	// Changes whenever activity reaches zero or observe_progress() is called; futex-waitable.
	std::atomic<std::uint32_t> &progress_word() { return progress_word_; }
	void observe_progress();

protected:
	// A cheap monotonic count the hosts read at every switch (threads mode: the CPU's
	// timestamp counter; deterministic mode: virtual nanoseconds), and its conversion.
	virtual std::uint64_t ticks() = 0;
	virtual std::uint64_t ticks_to_ns(std::uint64_t ticks) = 0;
	// A task starts or stops running (fibers: around a switch; attached threads: attach,
	// detach and parking).
	void run_begins(Task &task) { task.run_since_ = ticks(); }
	void run_ends(Task &task) { run_ends_at(task, ticks()); }
	// One task's run ends where the next one's begins: one tick count for both.
	void run_passes(Task &from, Task &to) {
		std::uint64_t now = ticks();
		run_ends_at(from, now);
		to.run_since_ = now;
	}
	static void run_ends_at(Task &task, std::uint64_t now) {
		task.run_ticks_.store(task.run_ticks_.load(std::memory_order_relaxed) + now -
						task.run_since_,
				std::memory_order_relaxed);
	}
	// Implementations that keep virtual time set charges_time_ and override these.
	virtual void advance_ps(std::uint64_t) {}
	virtual void note_scheduling_event() {}
	void activity_add(std::int64_t n);
	// Unparks a parked task at its deadline, for as long as it exists (no deadline: nothing).
	class DeadlineWakeup final : public Timer {
	public:
		DeadlineWakeup(Host &host, Task &task, std::uint64_t deadline);
		DeadlineWakeup(const DeadlineWakeup &) = delete;
		DeadlineWakeup &operator=(const DeadlineWakeup &) = delete;
		~DeadlineWakeup() override;
		void fire() override;

	private:
		Host &host_;
		Task &task_;
	};
	// The end of parking a fiber, once its state says parking: arm a wake-up for `deadline`,
	// switch to the scheduler, and disarm the wake-up once resumed.
	void switch_out_parked(Task &self, std::uint64_t deadline);
	// After a fiber switched out because its body returned: the task is exited (and may be
	// freed by on_fiber_exit: nothing touches it afterwards).
	void retire_exited(Task &task);
	// A fiber switched out without saying why: a bug in the host.
	[[noreturn]] static void no_switch_reason();
	// The CPU a runnable task goes to: the one it last ran on if its affinity still allows
	// it, else the lowest allowed one.
	unsigned pick_cpu(const Task &task) const {
		std::uint64_t allowed = task.affinity() & cpu_mask_;
		unsigned preferred = task.cpu_index();
		if (allowed & (std::uint64_t{1} << preferred))
			return preferred;
		// The kernel refuses affinity masks without any existing CPU, so this bit exists.
		return static_cast<unsigned>(__builtin_ctzll(allowed));
	}

	std::atomic<std::int64_t> activity_{0};
	std::atomic<std::uint32_t> progress_word_{0};
	bool charges_time_ = false;
	TraceRecorder *tracer_ = nullptr;
	// Bit i set = CPU i exists: CPUs 0 to cpu_count() - 1, set once by the constructor
	// (set_cpu_count), so that pick_cpu(), on every wake, masks without a division or a call.
	std::uint64_t cpu_mask_ = 0;

	void set_cpu_count(unsigned cpus) {
		if (cpus == 0 || cpus > 64)
			throw std::invalid_argument("helsim: the number of CPUs must be between 1 and 64");
		cpu_mask_ = cpus == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << cpus) - 1;
	}
};

} // namespace helsim::sim
