#include "thread.hpp"

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
	ended_.store(true, std::memory_order_release);
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
	ended_.store(true, std::memory_order_release);
	release_context();
	kernel().live_fibers.fetch_sub(1, std::memory_order_seq_cst);
	unref();
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
