// A schedulable execution context: a fiber on a simulated CPU, or an attached host thread.
// The kernel's Thread object derives from Task; sim/ never looks past this interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "fiber.hpp"
#include "host_faults.hpp"

namespace helsim::sim {

class Cpu;

// What a task waits on, for the deadlock report. Set by the kernel right before it parks.
struct WaitReason {
	const char *what = nullptr; // "futex", "queue", "yield", ...
	std::uintptr_t address = 0; // futex address, queue handle, ...
};

enum class TaskKind : std::uint8_t { fiber, attached };

// Park/unpark protocol (lost-wakeup free, spurious returns allowed; callers loop on their
// condition). The state word holds a run state plus a `notified` bit:
//  (1) unpark() sets `notified`. If the task was parked it instead moves it to runnable and
//      enqueues it (the bit is consumed by that transition).
//  (2) park() consumes `notified` and returns at once if it was set; otherwise it moves
//      running -> parking and switches away.
//  (3) After the switch, whoever runs next on that CPU (the scheduler, or the task that the
//      parking fiber switched to directly) finishes the park: parking -> parked, unless
//      `notified` arrived in between, in which case the task goes straight back to runnable.
// A task is therefore never resumed before its switch-out has completed.
// Runnable and running differ for no step of the protocol: unpark() only sets `notified` on
// either. So threads mode has no runnable state: a task that is started, woken or yields is
// running while it waits in a run queue, and neither a yield nor switching to a woken task
// changes its state word, where each transition would be a locked RMW.
enum TaskState : std::uint32_t {
	kTaskNew = 0,
	kTaskRunnable = 1, // deterministic mode: started or woken, not yet run since
	kTaskRunning = 2,  // on a CPU, or (threads mode) queued to run on one
	kTaskParking = 3,
	kTaskParked = 4,
	kTaskExited = 5,
	kTaskStateMask = 0xFF,
	kTaskNotified = 0x100,
};

class Task {
public:
	explicit Task(TaskKind kind) : kind_{kind} {}
	Task(const Task &) = delete;
	Task &operator=(const Task &) = delete;
	virtual ~Task() = default;

	// Takes the fiber's stack and prepares its body (run_fiber_body) to run at the first
	// switch; Host::start then makes it runnable. Throws StackExhausted (a std::bad_alloc)
	// when the host has no memory or mappings left.
	void create_fiber(std::size_t stack_size) {
		fiber_.create(stack_size, [this] { run_fiber_body(); });
	}

	TaskKind kind() const { return kind_; }
	bool is_fiber() const { return kind_ == TaskKind::fiber; }

	// Body of a fiber task; runs on the fiber's own stack.
	virtual void run_fiber_body() {}
	// Called by the scheduler once a fiber task's body has returned and its stack is gone.
	virtual void on_fiber_exit() {}

	const std::string &name() const { return name_; }
	void set_name(std::string name) { name_ = std::move(name); }

	int priority() const { return priority_.load(std::memory_order_relaxed); }
	void set_priority(int p) { priority_.store(p, std::memory_order_relaxed); }

	// Bit i set = may run on CPU i. Helsim supports up to 64 simulated CPUs.
	std::uint64_t affinity() const { return affinity_.load(std::memory_order_relaxed); }
	void set_affinity(std::uint64_t mask) { affinity_.store(mask, std::memory_order_relaxed); }

	unsigned cpu_index() const { return cpu_index_.load(std::memory_order_relaxed); }
	void set_cpu_index(unsigned i) { cpu_index_.store(i, std::memory_order_relaxed); }

	const WaitReason &wait_reason() const { return wait_; }
	void set_wait_reason(WaitReason r) { wait_ = r; }

	std::uint32_t state() const { return state_.load(std::memory_order_acquire); }

	// Teardown only: destroys a fiber that never finished, running its stack's destructors.
	void unwind_fiber_stack() { fiber_.unwind(); }

	// Kernel or user mode, for the host fault handler: a fault of a fiber task in user mode is
	// the simulated program's (handle_user_fault), one in kernel mode is helsim's own bug.
	// Written only by the task itself (syscall entry and exit, the fault handler); the signal
	// fences keep the compiler from moving kernel code to the wrong side of the store.
	bool in_kernel() const { return in_kernel_; }
	void set_in_kernel(bool value) {
		std::atomic_signal_fence(std::memory_order_seq_cst);
		in_kernel_ = value;
		std::atomic_signal_fence(std::memory_order_seq_cst);
	}
	// A fault of this fiber task in user mode that no fault window resolved (sim/host_faults.hpp).
	// Called on the fiber's own stack inside the signal handler, with in_kernel() set and the
	// faulting code's signal mask; it may park. Returning true retries the faulting access
	// (continues after an int3); false declines it (the process dies as before); or it never
	// returns (abandon_fiber()).
	virtual bool handle_user_fault([[maybe_unused]] const UserFault &fault) { return false; }
	// From the running fiber task: ends it for good without unwinding its stack (its frames'
	// destructors never run; the stack is freed). The scheduler then retires the task as if its
	// body had returned (on_fiber_exit). For faults: the faulting frame must never run again,
	// and throwing out of a signal frame needs -fnon-call-exceptions everywhere.
	[[noreturn]] void abandon_fiber() { Fiber::abandon(); }

private:
	friend class Host;
	friend class ThreadsHost;
	friend class DeterministicHost;
	friend class Cpu;
	friend class RunQueue;

	TaskKind kind_;
	std::string name_;
	std::atomic<int> priority_{0};
	std::atomic<std::uint64_t> affinity_{~std::uint64_t{0}};
	std::atomic<unsigned> cpu_index_{0};
	WaitReason wait_{};

	std::atomic<std::uint32_t> state_{kTaskNew};
	Fiber fiber_;
	bool in_kernel_ = false;

	// Run-queue links (owned by the CPU the task is queued on).
	Task *rq_next_ = nullptr;
	Task *rq_prev_ = nullptr;
	// Inbox link (lock-free stack of tasks handed over from other CPUs).
	Task *inbox_next_ = nullptr;
	// Run time (Host::run_time_ns): host ticks spent running, and the tick count when the
	// current run began. Written by the host thread that runs the task.
	std::atomic<std::uint64_t> run_ticks_{0};
	std::uint64_t run_since_ = 0;
	// A fiber that switched to this one directly while parking: this one finishes that park
	// (step (3)) once it runs, on its own stack. Written by that fiber before the switch.
	Task *parked_before_ = nullptr;
	// Why the fiber switched out, read by the scheduler right after the switch.
	enum class SwitchReason : std::uint8_t { none, yield, park, exit } switch_reason_{};
};

} // namespace helsim::sim
