#include "kernel/threads/thread.hpp"

#include <exception>
#include <utility>

#include <fmt/format.h>

#include "kernel/core/universe.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/space.hpp"

namespace helsim::kernel {

namespace {
// Where the syscall argument and output words live in the General set (hel.h's indices).
constexpr int kArgRegisters[kSyscallArgWords] = {kHelRegArg0, kHelRegArg1, kHelRegArg2, kHelRegArg3,
		kHelRegArg4, kHelRegArg5, kHelRegArg6, kHelRegArg7, kHelRegArg8};
constexpr int kOutRegisters[3] = {kHelRegOut0, kHelRegOut1, kHelRegOut2};
} // namespace

Thread::Thread(Kernel &kernel, sim::TaskKind task_kind, std::string name, Ref<Universe> universe,
		Ref<AddressSpace> space)
: Object{kernel, ObjectKind::thread}, sim::Task{task_kind}, tracer_{kernel.host().tracer()},
  universe_{std::move(universe)}, space_{std::move(space)}, started_{task_kind ==
																	sim::TaskKind::attached} {
	// First: a thread whose stack the host cannot give fails here, before it is registered.
	if (task_kind == sim::TaskKind::fiber)
		create_fiber(kernel.config().stack_size);
	set_name(std::move(name));
	kernel.random_bytes(credentials_.data(), credentials_.size());
	kernel.register_thread(*this);
}

Thread::~Thread() {
	// Only a thread that never started can go with observers left; mark_ended() completes
	// those of every other thread.
	mark_ended();
	std::array<std::uint64_t, kSyscallSlots> counts;
	for (std::size_t i = 0; i < kSyscallSlots; ++i)
		counts[i] = syscall_counts[i].get();
	kernel().add_syscall_counts(counts);
	kernel().retire_submitted(operations_submitted.get());
	kernel().unregister_thread(*this);
}

HelError Thread::start() {
	if (ended())
		return kHelErrThreadTerminated;
	if (started_.exchange(true, std::memory_order_acq_rel))
		return kHelErrIllegalState;
	// The fiber holds a reference until it has finished (dropped in on_fiber_exit).
	ref();
	kernel().live_fibers.fetch_add(1, std::memory_order_seq_cst);
	kernel().host().start(*this);
	return kHelErrNone;
}

void Thread::run_fiber_body() {
	// Every exception the entry lets escape is caught (one leaving the fiber would terminate
	// the process), except the one boost.context unwinds a fiber with at teardown: that one
	// must pass through untouched.
	try {
		entry_();
		record_outcome(ThreadOutcome::returned, {});
	} catch (const ThreadKilled &) {
		record_outcome(ThreadOutcome::killed, {});
	} catch (const PanicError &e) {
		record_outcome(ThreadOutcome::panicked, e.what());
	} catch (const std::exception &e) {
		record_outcome(ThreadOutcome::threw, e.what());
	} catch (...) {
		if (sim::current_exception_unwinds_fiber())
			throw;
		record_outcome(ThreadOutcome::threw, "exception of a type not derived from std::exception");
	}
	entry_ = nullptr;
}

void Thread::release_context() {
	// Let the universe and space go now: a universe holding a handle to this thread must not
	// keep itself alive through it. They are dropped outside the lock: that may free them.
	Ref<Universe> universe;
	Ref<AddressSpace> space;
	{
		std::lock_guard lock{exit_mutex_};
		universe = std::move(universe_);
		space = std::move(space_);
	}
}

void Thread::on_fiber_exit() {
	mark_ended();
	kernel().record_ended({name(), outcome(), outcome_message(), {}});
	release_context();
	Kernel &k = kernel();
	unref(); // may delete this
	if (k.live_fibers.fetch_sub(1, std::memory_order_seq_cst) == 1)
		k.host().observe_progress();
}

void Thread::unwind_fiber() {
	// Runs the fiber's destructors on the calling (teardown) thread; on_fiber_exit is not
	// called by the scheduler for it, so do its work here.
	record_outcome(ThreadOutcome::blocked, outcome_message());
	sim::QuietOutsideCalls quiet;
	sim::Task::unwind_fiber_stack();
	mark_ended();
	release_context();
	kernel().live_fibers.fetch_sub(1, std::memory_order_seq_cst);
	unref();
}

// ---------------------------------------------------------------- thread control
//
// The protocol, in steps (each under control_mutex_; completions and wake-ups after it):
//  (1) observe(): ended -> complete with kHelErrThreadTerminated; interrupted -> complete with
//      the current observation; otherwise append to observers_.
//  (2) stop(): the thread, at a stop point, writes its image, sets interrupted_ and the
//      observation, and takes the whole list: every observer waiting at that moment sees it.
//      It parks until interrupted_ is cleared or a kill is requested.
//  (3) load/store_registers(): only while interrupted_.
//  (4) resume(): ended -> kHelErrThreadTerminated; not interrupted -> kHelErrIllegalState;
//      otherwise clear interrupted_ and wake the thread (start it, if it never ran).
//  (5) kill(): set the kill request and wake the thread; it unwinds from its next stop point.
//      A thread that never ran is ended on the spot.
//  (6) mark_ended(): set ended_, take the list, complete it with kHelErrThreadTerminated.
// Since ended_ is set under the lock in (6), an observe in (1) either sees it or is taken in (6).

void Thread::complete(Observer *list, HelError error, unsigned observation) {
	while (list) {
		Observer *next = list->next;
		HelObserveResult result{error, observation};
		QueueSource source{&result, sizeof(result)};
		list->queue->post({&source, 1}, list->context, true);
		delete list;
		list = next;
	}
}

void Thread::set_stopped_at_creation() {
	std::lock_guard lock{control_mutex_};
	interrupted_ = true;
	observation_ = kHelObserveInterrupt;
}

void Thread::stop(unsigned observation, bool cancellation_point) {
	image_.ip = trap_continuation_ip();
	image_.sp = reinterpret_cast<HelWord>(__builtin_frame_address(0));
	Observer *waiting = nullptr;
	bool stopped = false;
	{
		std::lock_guard lock{control_mutex_};
		// A kill requested before this point wins and the thread does not stop: kill() takes
		// the same lock, so it either finds the thread stopped or is seen here.
		if (!killed()) {
			stopped = interrupted_ = true;
			observation_ = observation;
			upcall_frame_saved_ = false;
			waiting = std::exchange(observers_, nullptr);
			observers_tail_ = &observers_;
		}
	}
	if (!stopped) {
		unwind_if_killed(cancellation_point);
		return;
	}
	complete(waiting, kHelErrNone, observation);
	for (;;) {
		if (killed()) {
			unwind_if_killed(cancellation_point);
			return;
		}
		{
			std::lock_guard lock{control_mutex_};
			if (!interrupted_)
				break;
		}
		block({kInterruptedWait, observation}, sim::kNoDeadline);
	}
	if (image_.ip != trap_continuation_ip())
		run_upcall();
}

void Thread::run_upcall() {
	// A nested call on the thread's own stack, outside the kernel: it may make syscalls, trap
	// and be interrupted again. When it returns, the thread continues at the stop point with
	// the General registers saved when ip was moved (or those it stopped with).
	std::array<HelWord, kHelNumGprs> frame = upcall_frame_saved_ ? upcall_frame_ : image_.general;
	auto upcall = reinterpret_cast<void (*)(HelWord, HelWord, HelWord, HelWord, HelWord, HelWord)>(
			image_.ip);
	const auto &g = image_.general;
	// The upcall is user code: its faults are the program's (its syscalls mark their own).
	set_in_kernel(false);
	upcall(g[kHelRegArg0], g[kHelRegArg1], g[kHelRegArg2], g[kHelRegArg3], g[kHelRegArg4],
			g[kHelRegArg5]);
	set_in_kernel(true);
	image_.general = frame;
	image_.ip = trap_continuation_ip();
}

bool Thread::killed() const {
	return (control_.load(std::memory_order_acquire) & kControlKill) != 0;
}

// A kill unwinds a fiber only at a cancellation point (as POSIX deferred cancellation), and
// only with no exception in flight: an exception thrown from a destructor's syscall would end
// the process. Elsewhere the killed thread's syscalls work as before, so its clean-up runs.
void Thread::unwind_if_killed(bool cancellation_point) {
	if (cancellation_point && killed() && is_fiber() && std::uncaught_exceptions() == 0)
		throw ThreadKilled{};
}

bool Thread::is_cancellation_point(std::uint32_t number, const HelWord *args) {
	return number == kHelCallFutexWait || number == kHelCallYield ||
			(number == kHelCallDriveQueue && (args[1] & kHelDriveWait));
}

const HelWord *Thread::stop_at_entry(std::uint32_t &number, const HelWord *args, HelWord *storage) {
	bool cancellation_point = is_cancellation_point(number, args);
	if (killed()) {
		unwind_if_killed(cancellation_point);
		return is_fiber() ? args : nullptr;
	}
	control_.fetch_and(~kControlInterrupt, std::memory_order_relaxed);
	image_.general[kHelRegNumber] = number;
	for (int i = 0; i < kSyscallArgWords; ++i)
		image_.general[kArgRegisters[i]] = args[i];
	stop(kHelObserveInterrupt, cancellation_point);
	if (killed() && !is_fiber())
		return nullptr;
	number = static_cast<std::uint32_t>(image_.general[kHelRegNumber]);
	for (int i = 0; i < kSyscallArgWords; ++i)
		storage[i] = image_.general[kArgRegisters[i]];
	return storage;
}

HelError Thread::stop_at_exit(std::uint32_t number, const HelWord *args, HelError error,
		HelWord *outs) {
	bool cancellation_point = is_cancellation_point(number, args);
	if (killed()) {
		unwind_if_killed(cancellation_point);
		return is_fiber() ? error : kHelErrThreadTerminated;
	}
	control_.fetch_and(~kControlInterrupt, std::memory_order_relaxed);
	image_.general[kHelRegError] = static_cast<HelWord>(error);
	for (int i = 0; i < 3; ++i)
		image_.general[kOutRegisters[i]] = outs[i];
	stop(kHelObserveInterrupt, cancellation_point);
	if (killed() && !is_fiber())
		return kHelErrThreadTerminated;
	for (int i = 0; i < 3; ++i)
		outs[i] = image_.general[kOutRegisters[i]];
	return static_cast<HelError>(image_.general[kHelRegError]);
}

HelError Thread::trap_supercall(std::uint32_t number, const HelWord *args, HelWord *outs) {
	image_.general[kHelRegNumber] = number;
	for (int i = 0; i < kSyscallArgWords; ++i)
		image_.general[kArgRegisters[i]] = args[i];
	// kHelObserveSuperCall + n, n = number - kHelCallSuper: the number itself. A trap blocks
	// until resumed, so it is a cancellation point.
	stop(number, true);
	if (killed())
		return kHelErrThreadTerminated;
	for (int i = 0; i < 3; ++i)
		outs[i] = image_.general[kOutRegisters[i]];
	return static_cast<HelError>(image_.general[kHelRegError]);
}

void Thread::stop_for_panic(const HelWord *args) {
	{
		std::lock_guard lock{control_mutex_};
		if (!observed_)
			return;
	}
	image_.general[kHelRegNumber] = kHelCallPanic;
	image_.general[kHelRegArg0] = args[0];
	image_.general[kHelRegArg1] = args[1];
	stop(kHelObservePanic, false);
}

namespace {
unsigned observation_of(sim::UserFaultKind kind) {
	switch (kind) {
	case sim::UserFaultKind::page_fault: return kHelObservePageFault;
	case sim::UserFaultKind::illegal_instruction: return kHelObserveIllegalInstruction;
	case sim::UserFaultKind::divide_error: return kHelObserveDivByZero;
	case sim::UserFaultKind::breakpoint: return kHelObserveBreakpoint;
	case sim::UserFaultKind::general_protection:
	case sim::UserFaultKind::floating_point: break;
	}
	return kHelObserveGeneralFault;
}
} // namespace

std::string Thread::describe_fault(const sim::UserFault &fault, bool mapped) {
	switch (fault.kind) {
	case sim::UserFaultKind::page_fault:
		return fmt::format("page fault: {} at {:#x} ({}), pc {:#x}, in thread \"{}\"",
				fault.write ? "write" : "read", fault.address,
				mapped ? "access not allowed by the mapping" : "no mapping", fault.pc, name());
	case sim::UserFaultKind::general_protection:
		return fmt::format("general protection fault at pc {:#x} in thread \"{}\"", fault.pc,
				name());
	case sim::UserFaultKind::illegal_instruction:
		return fmt::format("illegal instruction at pc {:#x} in thread \"{}\"", fault.pc, name());
	case sim::UserFaultKind::divide_error:
		return fmt::format("integer division by zero (or overflow) at pc {:#x} in thread \"{}\"",
				fault.pc, name());
	case sim::UserFaultKind::breakpoint:
		return fmt::format("breakpoint (int3) before pc {:#x} in thread \"{}\"", fault.pc, name());
	case sim::UserFaultKind::floating_point:
		return fmt::format("floating-point exception at pc {:#x} in thread \"{}\"", fault.pc,
				name());
	}
	return {};
}

bool Thread::handle_user_fault(const sim::UserFault &fault) {
	// A mapping at the address (that does not allow the access) or none: the PageFault set's
	// flags and the message say which. Outside the window no mapping can exist.
	bool mapped = false;
	if (fault.kind == sim::UserFaultKind::page_fault) {
		Ref<MemoryView> view;
		std::size_t offset = 0;
		mapped = space().resolve(fault.address, view, offset) == kHelErrNone;
	}
	bool observed;
	{
		std::lock_guard lock{control_mutex_};
		observed = observed_;
	}
	// Nothing on this frame may own memory when the fiber is abandoned below: a literal.
	const char *resumed = "";
	if (observed && !killed()) {
		if (fault.kind == sim::UserFaultKind::page_fault) {
			image_.fault_address = fault.address;
			image_.fault_flags = mapped ? kHelPageFaultAccessError : kHelPageFaultMapError;
		}
		// Not a cancellation point: a kill must not throw through the signal frame.
		stop(observation_of(fault.kind), false);
		if (!killed()) {
			// A page fault is retried (the supervisor may have mapped the page meanwhile; if
			// not, it faults and stops again); execution goes on after an int3. Any other
			// instruction would only fault again, and the ip cannot be moved past it.
			if (fault.kind == sim::UserFaultKind::page_fault ||
					fault.kind == sim::UserFaultKind::breakpoint)
				return true;
			resumed = " (resumed, but the instruction cannot complete)";
		}
	}
	if (killed())
		record_outcome(ThreadOutcome::killed, {});
	else
		record_outcome(ThreadOutcome::faulted, describe_fault(fault, mapped) + resumed);
	// No unwinding: the frames above the signal frame may have no unwind tables for the
	// faulting instruction, and the faulting code must never run again.
	abandon_fiber();
}

void Thread::set_start_point(HelWord ip, HelWord sp) {
	image_.ip = ip;
	image_.sp = sp;
}

std::pair<HelWord, HelWord> Thread::start_point() {
	std::lock_guard lock{control_mutex_};
	return {image_.ip, image_.sp};
}

HelError Thread::interrupt() {
	{
		std::lock_guard lock{control_mutex_};
		if (ended())
			return kHelErrThreadTerminated;
	}
	control_.fetch_or(kControlInterrupt, std::memory_order_release);
	// A thread blocked in an interruptible wait sees the request once woken; any other park
	// returns spuriously, which its caller handles.
	wake();
	return kHelErrNone;
}

HelError Thread::kill() {
	bool never_ran = false;
	{
		std::lock_guard lock{control_mutex_};
		if (ended())
			return kHelErrNone;
		control_.fetch_or(kControlKill, std::memory_order_release);
		// No longer stopped at a known point: observers wait for the end, registers are gone.
		interrupted_ = false;
		if (is_fiber() && !started_.exchange(true, std::memory_order_acq_rel))
			never_ran = true;
	}
	if (never_ran) {
		end_unstarted();
		return kHelErrNone;
	}
	if (!is_fiber()) {
		// An attached host thread cannot be unwound by the kernel: it is ended now, and each
		// of its later syscalls fails with kHelErrThreadTerminated (docs: helKillThread).
		record_outcome(ThreadOutcome::killed, {});
		mark_ended();
	}
	wake();
	return kHelErrNone;
}

void Thread::end_unstarted() {
	record_outcome(ThreadOutcome::killed, {});
	mark_ended();
	kernel().record_ended({name(), ThreadOutcome::killed, {}, {}});
	entry_ = nullptr;
	release_context();
}

void Thread::handle_opened() { handles_.fetch_add(1, std::memory_order_relaxed); }

void Thread::handle_closed() {
	if (handles_.fetch_sub(1, std::memory_order_acq_rel) == 1)
		kill();
}

HelError Thread::resume() {
	{
		std::lock_guard lock{control_mutex_};
		if (ended())
			return kHelErrThreadTerminated;
		if (!interrupted_)
			return kHelErrIllegalState;
		interrupted_ = false;
	}
	if (!started())
		return start();
	wake(); // parked in stop()
	return kHelErrNone;
}

HelError Thread::load_registers(int set, HelWord *words) {
	std::lock_guard lock{control_mutex_};
	if (ended())
		return kHelErrThreadTerminated;
	if (!interrupted_)
		return kHelErrIllegalState;
	load_register_set(image_, set, words);
	return kHelErrNone;
}

HelError Thread::store_registers(int set, const HelWord *words) {
	std::lock_guard lock{control_mutex_};
	if (ended())
		return kHelErrThreadTerminated;
	if (!interrupted_)
		return kHelErrIllegalState;
	RegisterImage next = image_;
	store_register_set(next, set, words);
	// Moving ip away from a trap saves the General registers to return to after the upcall.
	if (started() && image_.ip == trap_continuation_ip() && next.ip != image_.ip &&
			!upcall_frame_saved_) {
		upcall_frame_ = image_.general;
		upcall_frame_saved_ = true;
	}
	image_ = next;
	return kHelErrNone;
}

void Thread::observe(Thread &self, IpcQueue &queue, std::uintptr_t context) {
	// Allocated before it counts as submitted (see without_allocation_exceptions).
	auto *observer = new Observer{Ref<IpcQueue>{&queue}, context};
	self.note_submitted();
	HelError error = kHelErrNone;
	unsigned observation = kHelObserveNull;
	{
		std::lock_guard lock{control_mutex_};
		observed_ = true;
		if (ended()) {
			error = kHelErrThreadTerminated;
		} else if (interrupted_) {
			observation = observation_;
		} else {
			*observers_tail_ = observer;
			observers_tail_ = &observer->next;
			return;
		}
	}
	complete(observer, error, observation);
}

void Thread::mark_ended() {
	Observer *waiting;
	{
		std::lock_guard lock{control_mutex_};
		ended_.store(true, std::memory_order_release);
		waiting = std::exchange(observers_, nullptr);
		observers_tail_ = &observers_;
	}
	complete(waiting, kHelErrThreadTerminated, kHelObserveNull);
}

void Thread::for_each_pending(const std::function<void(const PendingOperation &)> &f) {
	std::lock_guard lock{control_mutex_};
	for (Observer *o = observers_; o; o = o->next)
		f({o->queue.get(), o->context, "observe", this});
}

void Thread::abandon() {
	// Teardown: the queues may be going too; the observers go without a completion, as every
	// other operation still pending then.
	Observer *waiting;
	{
		std::lock_guard lock{control_mutex_};
		waiting = std::exchange(observers_, nullptr);
		observers_tail_ = &observers_;
	}
	while (waiting)
		delete std::exchange(waiting, waiting->next);
}

void Thread::for_each_reference(const std::function<void(Object &)> &f) {
	// The report's walk runs on another host thread while this one may be ending: the
	// references it takes under the lock keep both alive past release_context(), and f runs
	// without the lock.
	Ref<Universe> universe;
	Ref<AddressSpace> space;
	{
		std::lock_guard lock{exit_mutex_};
		universe = universe_;
		space = space_;
	}
	if (universe)
		f(*universe);
	if (space)
		f(*space);
}

void Thread::block(sim::WaitReason reason, std::uint64_t deadline) {
	if (consuming_sq_) [[unlikely]]
		consuming_sq_->announce_batch();
	set_wait_reason(reason);
	kernel().host().park(*this, deadline);
	set_wait_reason({});
}

void Thread::wake() {
	if (tracer_) [[unlikely]]
		tracer_->wake(*this);
	kernel().host().unpark(*this);
}

void Thread::trace_submitted() {
	// One flow per submission: the key is consumed so a second note cannot reuse it.
	if (trace_queue_)
		tracer_->submission(trace_queue_, trace_context_);
	trace_queue_ = nullptr;
}

void Thread::record_outcome(ThreadOutcome outcome, std::string message) {
	std::lock_guard lock{outcome_mutex_};
	outcome_ = outcome;
	outcome_message_ = std::move(message);
}

ThreadOutcome Thread::outcome() const {
	std::lock_guard lock{outcome_mutex_};
	return outcome_;
}

std::string Thread::outcome_message() const {
	std::lock_guard lock{outcome_mutex_};
	return outcome_message_;
}

} // namespace helsim::kernel
