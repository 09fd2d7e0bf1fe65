// A simulated thread: a fiber scheduled by a simulated CPU, or an attached host thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include <helsim/machine.hpp>

#include "../../sim/task.hpp"
#include "../../sim/trace.hpp"
#include "kernel.hpp"
#include "object.hpp"

namespace helsim::kernel {

class Universe;
class AddressSpace;
class IpcQueue;

// The wait reason of a thread that took an interrupt and waits for helResume.
inline constexpr char kInterruptedWait[] = "interrupted";

inline constexpr std::uint32_t kThreadDefaultRights =
		kHelRightRead | kHelRightWrite | kHelRightWait | kHelRightSignal | kHelRightManage;

class Thread final : public Object, public sim::Task {
public:
	static constexpr ObjectKind kKind = ObjectKind::thread;

	Thread(Kernel &kernel, sim::TaskKind task_kind, std::string name, Ref<Universe> universe,
			Ref<AddressSpace> space);
	~Thread() override;

	// The simulated thread running on this host thread, or nullptr.
	static Thread *current() { return static_cast<Thread *>(sim::current_task()); }

	Universe &universe() { return *universe_; }
	const Ref<Universe> &universe_ref() { return universe_; }
	AddressSpace &space() { return *space_; }
	const Ref<AddressSpace> &space_ref() { return space_; }
	// The space as another thread sees it (Read/WriteMemory on a thread handle): null once
	// the thread has ended.
	Ref<AddressSpace> space_of_other() {
		std::lock_guard lock{exit_mutex_};
		return space_;
	}

	const std::array<char, 16> &credentials() const { return credentials_; }

	// helWrite/ReadFsBase, helWrite/ReadGsBase: written by the thread itself.
	std::uintptr_t fs_base() const { return fs_base_; }
	void set_fs_base(std::uintptr_t value) { fs_base_ = value; }
	std::uintptr_t gs_base() const { return gs_base_; }
	void set_gs_base(std::uintptr_t value) { gs_base_ = value; }

	// Fiber threads: what to run, and starting it (once).
	void set_entry(std::function<void()> entry) { entry_ = std::move(entry); }
	// kHelErrIllegalState if already started, kHelErrThreadTerminated if it has ended.
	HelError start();
	bool started() const { return started_.load(std::memory_order_acquire); }
	bool ended() const { return ended_.load(std::memory_order_acquire); }

	// Thread control (docs/architecture.md, "Thread control"). A thread is running (or
	// blocked) or interrupted, stopped at a known point with an observation; one created with
	// kHelThreadStopped starts interrupted with kHelObserveInterrupt.
	void set_interrupted(unsigned observation);
	// helInterruptThread: the thread stops at its next syscall entry or exit (an interruptible
	// wait it is blocked in returns kHelErrCancelled first). kHelErrThreadTerminated once it
	// has ended.
	HelError interrupt();
	// An interrupt was requested: interruptible waits give up with kHelErrCancelled.
	bool interrupt_pending() const { return interrupt_requested_.load(std::memory_order_acquire); }
	// At a syscall's entry or exit of this (current) thread, with no kernel lock held: takes a
	// requested interrupt, staying interrupted until helResume.
	void take_interrupt();
	// helResume: continues an interrupted thread (starts it, if it never ran).
	// kHelErrThreadTerminated once it has ended, kHelErrIllegalState if it is not interrupted.
	HelError resume();
	// kHelSubmitObserve, submitted by `self` to `queue`: completes at once with the current
	// observation if the thread is interrupted, with kHelErrThreadTerminated if it has ended,
	// and otherwise when one of those happens next.
	void observe(Thread &self, IpcQueue &queue, std::uintptr_t context);
	// The thread has ended (its fiber returned or was unwound, or its host thread detached):
	// observers still waiting complete with kHelErrThreadTerminated.
	void mark_ended();
	void for_each_pending(const std::function<void(const PendingOperation &)> &f) override;
	void abandon() override;

	// Blocks this (current) thread until unpark or deadline, recording what it waits on.
	void block(sim::WaitReason reason, std::uint64_t deadline);
	void wake();

	void record_outcome(ThreadOutcome outcome, std::string message);
	ThreadOutcome outcome() const;
	std::string outcome_message() const;

	// Written only by this thread; read by reports while it may still run. A relaxed
	// load-add-store is a plain increment, not a locked one.
	class CallCounter {
	public:
		void bump() { n_.store(n_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
		std::uint64_t get() const { return n_.load(std::memory_order_relaxed); }

	private:
		std::atomic<std::uint64_t> n_{0};
	};
	std::array<CallCounter, kSyscallSlots> syscall_counts{};
	// Asynchronous operations this thread submitted (for the exactly-once accounting).
	CallCounter operations_submitted;
	void note_submitted() {
		operations_submitted.bump();
		if (tracer_) [[unlikely]]
			trace_submitted();
	}
	// Tracing: the recorder (nullptr when off), and the (queue, context) the submission in
	// progress completes to. The submitting path sets the key (only while tracing), so that
	// note_submitted() can start the operation's flow without every caller passing it.
	sim::TraceRecorder *tracer() const { return tracer_; }
	void set_trace_key(const void *queue, std::uintptr_t context) {
		trace_queue_ = queue;
		trace_context_ = context;
	}

	void for_each_reference(const std::function<void(Object &)> &f) override;

	void run_fiber_body() override;
	void on_fiber_exit() override;

	// Teardown only: unwind a fiber that never finished.
	void unwind_fiber();

private:
	// Drops the universe and the space once the thread has ended.
	void release_context();
	void trace_submitted();

	sim::TraceRecorder *const tracer_;
	const void *trace_queue_ = nullptr;
	std::uintptr_t trace_context_ = 0;

	Ref<Universe> universe_;
	Ref<AddressSpace> space_;
	std::mutex exit_mutex_; // guards space_ against space_of_other() once the thread ends
	std::array<char, 16> credentials_{};
	std::uintptr_t fs_base_ = 0;
	std::uintptr_t gs_base_ = 0;
	std::function<void()> entry_;
	std::atomic<bool> started_{false};
	std::atomic<bool> ended_{false};

	// An observe waiting for the next observation (a FIFO, completed in submission order).
	struct Observer {
		Ref<IpcQueue> queue;
		std::uintptr_t context;
		Observer *next = nullptr;
	};
	// Completes a detached list of observers (no lock held).
	static void complete(Observer *list, HelError error, unsigned observation);

	std::atomic<bool> interrupt_requested_{false};
	std::mutex control_mutex_; // interrupted_, observation_, observers_, and ended_'s writes
	bool interrupted_ = false;
	unsigned observation_ = kHelObserveNull;
	Observer *observers_ = nullptr;
	Observer **observers_tail_ = &observers_;

	mutable std::mutex outcome_mutex_;
	ThreadOutcome outcome_ = ThreadOutcome::not_started;
	std::string outcome_message_;
};

} // namespace helsim::kernel
