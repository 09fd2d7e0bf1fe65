#include "thread.hpp"

#include <utility>

#include "queue.hpp"
#include "space.hpp"
#include "universe.hpp"

namespace helsim::kernel {

Thread::Thread(Kernel &kernel, sim::TaskKind task_kind, std::string name, Ref<Universe> universe,
		Ref<AddressSpace> space)
: Object{kernel, ObjectKind::thread}, sim::Task{task_kind}, tracer_{kernel.host().tracer()},
  universe_{std::move(universe)}, space_{std::move(space)} {
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
	kernel().host().start(*this, kernel().config().stack_size);
	return kHelErrNone;
}

void Thread::run_fiber_body() {
	// Every exception the entry lets escape is caught (one leaving the fiber would terminate
	// the process), except the one boost.context unwinds a fiber with at teardown: that one
	// must pass through untouched.
	try {
		entry_();
		record_outcome(ThreadOutcome::returned, {});
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
	Ref<AddressSpace> space;
	{
		std::lock_guard lock{exit_mutex_};
		space = std::move(space_);
	}
	universe_ = nullptr;
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
	sim::Task::unwind_fiber_stack();
	mark_ended();
	release_context();
	kernel().live_fibers.fetch_sub(1, std::memory_order_seq_cst);
	unref();
}

// ---------------------------------------------------------------- thread control
//
// The observation protocol, in steps (every step under control_mutex_, completions after it):
//  (1) observe(): ended -> complete with kHelErrThreadTerminated; interrupted -> complete with
//      the current observation; otherwise append to observers_.
//  (2) set_interrupted(): record the observation, take the whole list, complete it with that
//      observation: every observer waiting at that moment sees the interrupt.
//  (3) resume(): ended -> kHelErrThreadTerminated; not interrupted -> kHelErrIllegalState;
//      otherwise leave the interrupted state (and start a thread that never ran).
//  (4) mark_ended(): set ended_, take the list, complete it with kHelErrThreadTerminated.
// Since ended_ is set under the lock in (4), an observe in (1) either sees it or is taken in (4).

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

void Thread::set_interrupted(unsigned observation) {
	Observer *waiting;
	{
		std::lock_guard lock{control_mutex_};
		interrupted_ = true;
		observation_ = observation;
		waiting = std::exchange(observers_, nullptr);
		observers_tail_ = &observers_;
	}
	complete(waiting, kHelErrNone, observation);
}

HelError Thread::interrupt() {
	{
		std::lock_guard lock{control_mutex_};
		if (ended())
			return kHelErrThreadTerminated;
	}
	interrupt_requested_.store(true, std::memory_order_release);
	// A thread blocked in an interruptible wait sees the request once woken; any other park
	// returns spuriously, which its caller handles.
	wake();
	return kHelErrNone;
}

void Thread::take_interrupt() {
	interrupt_requested_.store(false, std::memory_order_relaxed);
	set_interrupted(kHelObserveInterrupt);
	for (;;) {
		{
			std::lock_guard lock{control_mutex_};
			if (!interrupted_)
				return;
		}
		block({kInterruptedWait, 0}, sim::kNoDeadline);
	}
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
	wake(); // parked in take_interrupt()
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
	if (universe_)
		f(*universe_);
	if (space_)
		f(*space_);
}

void Thread::block(sim::WaitReason reason, std::uint64_t deadline) {
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
