// A simulated thread: a fiber scheduled by a simulated CPU, or an attached host thread.
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <helsim/machine_config.hpp>

#include "kernel/core/kernel.hpp"
#include "kernel/core/object.hpp"
#include "kernel/threads/register_image.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

class Universe;
class AddressSpace;
class IpcQueue;

// The wait reason of a stopped thread waiting for helResume (its address field: the
// observation).
inline constexpr char kInterruptedWait[] = "interrupted";

// Thrown at a syscall's entry or exit of a thread that was killed (helKillThread, or its last
// handle closed): unwinds the fiber to its entry, which records ThreadOutcome::killed. Not a
// std::exception, so that handlers for those let it pass.
struct ThreadKilled {};

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

	// helWrite/ReadFsBase, helWrite/ReadGsBase: written by the thread itself, and by a
	// supervisor's Thread register set while it is interrupted.
	std::uintptr_t fs_base() const { return image_.fs; }
	void set_fs_base(std::uintptr_t value) { image_.fs = value; }
	std::uintptr_t gs_base() const { return image_.gs; }
	void set_gs_base(std::uintptr_t value) { image_.gs = value; }

	// Fiber threads: what to run, and starting it (once).
	void set_entry(std::function<void()> entry) { entry_ = std::move(entry); }
	// kHelErrIllegalState if already started, kHelErrThreadTerminated if it has ended.
	HelError start();
	bool started() const { return started_.load(std::memory_order_acquire); }
	bool ended() const { return ended_.load(std::memory_order_acquire); }

	// Thread control (docs/architecture.md, "Thread control"). A thread is running (or
	// blocked) or interrupted: stopped at a known point with an observation and a register
	// image. One created with kHelThreadStopped starts interrupted with kHelObserveInterrupt
	// and, when resumed, calls the image's ip with its sp as the argument.
	void set_stopped_at_creation();
	// helCreateThread's ip and sp (before the thread has a handle), and where it starts.
	void set_start_point(HelWord ip, HelWord sp);
	std::pair<HelWord, HelWord> start_point();
	// helInterruptThread: the thread stops at its next syscall entry or exit (an interruptible
	// wait it is blocked in returns kHelErrCancelled first). kHelErrThreadTerminated once it
	// has ended.
	HelError interrupt();
	// helKillThread, and the last handle closed: the thread unwinds at its next syscall entry
	// or exit (an interruptible wait returns first); one that never ran ends at once.
	// kHelErrNone also if it has ended already.
	HelError kill();
	// An interrupt or a kill was requested: interruptible waits give up with kHelErrCancelled.
	bool interrupt_pending() const { return control_.load(std::memory_order_acquire) != 0; }
	// The stop points of this (current) thread, at a syscall's entry and exit with no kernel
	// lock held, taken when interrupt_pending(). Entry: the image holds the call's number and
	// arguments, and the call goes on with the image's (args points to `storage` then). Exit:
	// the image holds the error and the output words, and the caller gets the image's.
	// A killed fiber unwinds (ThreadKilled) here if the call is a cancellation point (a
	// blocking wait: helFutexWait, helDriveQueue with kHelDriveWait, helYield) and otherwise
	// makes the call as usual; a killed attached thread's calls fail (entry returns nullptr,
	// exit kHelErrThreadTerminated).
	const HelWord *stop_at_entry(std::uint32_t &number, const HelWord *args, HelWord *storage);
	HelError stop_at_exit(std::uint32_t number, const HelWord *args, HelError error, HelWord *outs);
	// A supercall without the inline handler: the thread stops with kHelObserveSuperCall + n
	// and its number and arguments in the image; when resumed it returns the image's error and
	// output words.
	HelError trap_supercall(std::uint32_t number, const HelWord *args, HelWord *outs);
	// helPanic of a thread that has been observed: it stops with kHelObservePanic first.
	void stop_for_panic(const HelWord *args);
	// helResume: continues an interrupted thread (starts it, if it never ran).
	// kHelErrThreadTerminated once it has ended, kHelErrIllegalState if it is not interrupted.
	HelError resume();
	// helLoadRegisters / helStoreRegisters by a supervisor: kHelErrIllegalArgs for a set the
	// thread does not have, kHelErrIllegalState unless interrupted, kHelErrThreadTerminated
	// once ended. `words` holds register_set_size() bytes.
	HelError load_registers(int set, HelWord *words);
	HelError store_registers(int set, const HelWord *words);
	// kHelSubmitObserve, submitted by `self` to `queue`: completes at once with the current
	// observation if the thread is interrupted, with kHelErrThreadTerminated if it has ended,
	// and otherwise when one of those happens next.
	void observe(Thread &self, IpcQueue &queue, std::uintptr_t context);
	// The thread has ended (its fiber returned or was unwound, or its host thread detached):
	// observers still waiting complete with kHelErrThreadTerminated.
	void mark_ended();
	// Handles to the thread in any universe; closing the last one kills it (as thor's
	// ActiveHandle). Threads that never had a handle (Machine::spawn) are not affected.
	void handle_opened() override;
	void handle_closed() override;
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
	// I/O ports helEnableIo enabled for this thread (io_space.cpp); read and written only by
	// the thread itself. nullptr until the first helEnableIo.
	std::unique_ptr<std::bitset<65536>> enabled_ports;
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
	// IpcQueue::drive(): the queue whose SQ this thread consumes, if any (see block()).
	void set_consuming_sq(IpcQueue *queue) { consuming_sq_ = queue; }
	void set_trace_key(const void *queue, std::uintptr_t context) {
		trace_queue_ = queue;
		trace_context_ = context;
	}

	void for_each_reference(const std::function<void(Object &)> &f) override;

	void run_fiber_body() override;
	void on_fiber_exit() override;
	// A fault of this fiber thread's user code that nothing resolved (docs/architecture.md,
	// "Faults in simulated code"): an observed thread stops with the fault's observation and
	// retries the access (continues after an int3) when resumed; otherwise, or once killed, or
	// when resumed after an instruction that cannot complete, it ends here as faulted (killed)
	// without unwinding its stack.
	bool handle_user_fault(const sim::UserFault &fault) override;

	// Teardown only: unwind a fiber that never finished.
	void unwind_fiber();

private:
	// Drops the universe and the space once the thread has ended.
	void release_context();
	void trace_submitted();

	sim::TraceRecorder *const tracer_;
	const void *trace_queue_ = nullptr;
	IpcQueue *consuming_sq_ = nullptr; // a queue whose SQ this thread consumes (in drive())
	// The kernel's list of threads (Kernel::register_thread); guarded by its threads_mutex_.
	friend class Kernel;
	Thread *kernel_prev_ = nullptr;
	Thread *kernel_next_ = nullptr;
	std::uintptr_t trace_context_ = 0;

	Ref<Universe> universe_;
	Ref<AddressSpace> space_;
	// Guards universe_ and space_ against other threads' readers (space_of_other, the
	// report's for_each_reference) once the thread ends.
	std::mutex exit_mutex_;
	std::array<char, 16> credentials_{};
	std::function<void()> entry_;
	std::atomic<bool> started_; // an attached thread runs from the start
	std::atomic<bool> ended_{false};

	// An observe waiting for the next observation (a FIFO, completed in submission order).
	struct Observer {
		Ref<IpcQueue> queue;
		std::uintptr_t context;
		Observer *next = nullptr;
	};
	// Completes a detached list of observers (no lock held).
	static void complete(Observer *list, HelError error, unsigned observation);

	// Stops this (current) thread with `observation` until helResume or a kill (which throws
	// ThreadKilled), then runs the upcall a supervisor may have asked for (see store_registers).
	// The caller has written what the stop point shows into image_. A kill ends the stop
	// (unwinding at a cancellation point; the caller checks killed() otherwise).
	void stop(unsigned observation, bool cancellation_point);
	// The outcome message of a fault: what, where, in which thread.
	std::string describe_fault(const sim::UserFault &fault, bool mapped);
	void run_upcall();
	bool killed() const;
	void unwind_if_killed(bool cancellation_point);
	static bool is_cancellation_point(std::uint32_t number, const HelWord *args);
	// Ends a thread whose fiber never ran (a kill before its first resume).
	void end_unstarted();

	enum : unsigned { kControlInterrupt = 1, kControlKill = 2 };
	std::atomic<unsigned> control_{0};
	std::atomic<std::uint64_t> handles_{0};
	std::mutex control_mutex_; // the fields below, image_ while interrupted, ended_'s writes
	bool interrupted_ = false;
	bool observed_ = false; // an observe was submitted once: a supervisor watches the thread
	unsigned observation_ = kHelObserveNull;
	Observer *observers_ = nullptr;
	Observer **observers_tail_ = &observers_;
	RegisterImage image_;
	// The General registers an upcall returns to: saved when a store first moves ip away from
	// the trap continuation (as a kernel pushes a signal frame before it points ip at the
	// handler).
	std::array<HelWord, kHelNumGprs> upcall_frame_{};
	bool upcall_frame_saved_ = false;

	mutable std::mutex outcome_mutex_;
	ThreadOutcome outcome_ = ThreadOutcome::not_started;
	std::string outcome_message_;
};

} // namespace helsim::kernel
