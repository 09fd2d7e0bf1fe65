#include "fiber.hpp"

#include <memory>
#include <utility>

#include <boost/context/stack_context.hpp>

#include "sanitizers.hpp"

#ifdef HELSIM_ASAN
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
		size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
		size_t *size_old);
#endif
#ifdef HELSIM_TSAN
extern "C" void *__tsan_get_current_fiber();
extern "C" void *__tsan_create_fiber(unsigned flags);
extern "C" void __tsan_destroy_fiber(void *fiber);
extern "C" void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

namespace helsim::sim {
namespace {

// A fiber that switched out may resume on another host thread: only the scheduler side, and a
// fiber before it switches, look up this_host_thread(); a resumed fiber finds what it needs in
// its Fiber.
// Hands boost the stack that create() took from the pool, and gives it back when boost is done.
struct PooledStack {
	StackSlot slot;

	boost::context::stack_context allocate() {
		boost::context::stack_context stack;
		stack.size = slot.size;
		stack.sp = static_cast<char *>(slot.bottom) + slot.size;
		return stack;
	}

	void deallocate(boost::context::stack_context &) noexcept { release_stack(slot); }
};

} // namespace

Fiber::~Fiber() {
	if (ctx_ && !finished_)
		unwind();
#ifdef HELSIM_TSAN
	if (tsan_fiber_)
		__tsan_destroy_fiber(tsan_fiber_);
#endif
}

void Fiber::create(std::size_t stack_size, std::function<void()> body) {
	stack_ = allocate_stack(stack_size);
	body_ = std::move(body);
#ifdef HELSIM_TSAN
	tsan_fiber_ = __tsan_create_fiber(0);
#endif
#ifdef HELSIM_ASAN
	// boost's constructor enters the new stack once, up to its first suspension in boost's
	// entry function, whose frame (holding the variable our lambda returns into) lives until
	// the fiber ends. Unannotated, ASan would give that frame fake-stack memory of whoever
	// creates the fiber (a CPU thread, another fiber), to be reused or freed under it.
	void *own_fake_stack = nullptr;
	__sanitizer_start_switch_fiber(&own_fake_stack, stack_.bottom, stack_.size);
#endif
	ctx_ = boost::context::fiber{std::allocator_arg, PooledStack{stack_},
			[this](boost::context::fiber &&scheduler) {
				scheduler_ = std::move(scheduler);
				after_switch_in(nullptr);
				try {
					body_();
				} catch (const boost::context::detail::forced_unwind &) {
			// Fiber::unwind() is done with this stack; boost switches back to the
			// unwinding thread once the exception reaches the fiber's entry.
#ifdef HELSIM_ASAN
					__sanitizer_start_switch_fiber(&asan_fake_stack_, scheduler_stack_bottom_,
							scheduler_stack_size_);
#endif
					throw;
				}
				body_ = nullptr;
#ifdef HELSIM_ASAN
				// Saved, not freed here: see free_fake_stack().
				__sanitizer_start_switch_fiber(&asan_fake_stack_, scheduler_stack_bottom_,
						scheduler_stack_size_);
#endif
				// TSan switches back in switch_in(), once this lambda's instrumented frames
				// have exited on the fiber's own shadow stack: switching here would pop them
				// off the scheduler's, which underflows it.
				return std::move(scheduler_);
			}};
#ifdef HELSIM_ASAN
	// The finish that pairs with the start above makes ASan believe it is on the fiber's stack
	// (it has no notion of a switch there and back); a second, empty switch returns it to ours.
	const void *own_bottom = nullptr;
	std::size_t own_size = 0;
	__sanitizer_finish_switch_fiber(own_fake_stack, &own_bottom, &own_size);
	__sanitizer_start_switch_fiber(&own_fake_stack, own_bottom, own_size);
	__sanitizer_finish_switch_fiber(own_fake_stack, nullptr, nullptr);
#endif
}

Fiber &Fiber::switch_in() {
	HostThread &hc = this_host_thread();
	hc.fiber = this;
	running_ = true;
	entered_ = true;
#ifdef HELSIM_ASAN
	void *fake = nullptr;
	__sanitizer_start_switch_fiber(&fake, stack_.bottom, stack_.size);
#endif
#ifdef HELSIM_TSAN
	if (!hc.tsan_scheduler)
		hc.tsan_scheduler = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
	boost::context::fiber back = std::move(ctx_).resume();
#ifdef HELSIM_ASAN
	__sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
	// The scheduler side never changes host threads: `hc` is still ours, and names the fiber
	// that came back, this one or the last of a chain of direct switches that began here.
	Fiber &out = *hc.fiber;
	out.ctx_ = std::move(back);
#ifdef HELSIM_TSAN
	if (!out.ctx_) // the body returned: TSan still runs on the fiber's state (see create())
		__tsan_switch_to_fiber(hc.tsan_scheduler, 0);
#endif
	out.running_ = false;
	hc.fiber = nullptr;
	if (out.abandoned_) {
		// ctx_ names the abandoned stack: destroying it would unwind that stack, so it goes
		// into storage that is never destroyed, and the stack is freed as it is.
		alignas(boost::context::fiber) unsigned char sink[sizeof(boost::context::fiber)];
		::new (static_cast<void *>(sink)) boost::context::fiber{std::move(out.ctx_)};
		release_stack(out.stack_);
		out.body_ = nullptr;
	} else if (out.ctx_) {
		out.check_canary(); // only while it lives: a finished fiber's stack is back in the pool
	}
	if (!out.ctx_) {
		out.finished_ = true;
		out.free_fake_stack();
	}
	return out;
}

inline void Fiber::check_canary() const {
	if (stack_.canary && *stack_.canary != kStackCanary) [[unlikely]]
		stack_overflowed(stack_);
}

void Fiber::switch_out() {
	HostThread &hc = this_host_thread();
	Fiber *self = hc.fiber;
#ifdef HELSIM_ASAN
	// The fake stack is the fiber's: it goes with the fiber to whichever host thread resumes
	// it, while that thread's own comes back from switch_in()'s save slot.
	__sanitizer_start_switch_fiber(&self->asan_fake_stack_, self->scheduler_stack_bottom_,
			self->scheduler_stack_size_);
#endif
#ifdef HELSIM_TSAN
	__tsan_switch_to_fiber(hc.tsan_scheduler, 0);
#endif
	// From the switch on, `hc` may be another host thread's: only `self` is used.
	try {
		self->land(std::move(self->scheduler_).resume());
	} catch (const boost::context::detail::forced_unwind &) {
		// Fiber::unwind() resumed us, on its own host thread, to unwind this stack.
		self->after_switch_in(nullptr);
		throw;
	}
}

void Fiber::switch_to(HostThread &here, Fiber &next) {
	Fiber *self = here.fiber;
	here.fiber = &next;
	next.running_ = true;
	next.switched_from_ = self;
#ifdef HELSIM_ASAN
	__sanitizer_start_switch_fiber(&self->asan_fake_stack_, next.stack_.bottom, next.stack_.size);
#endif
#ifdef HELSIM_TSAN
	__tsan_switch_to_fiber(next.tsan_fiber_, 0);
#endif
	// From the switch on, `here` may be another host thread's: only `self` is used.
	try {
		self->land(std::move(next.ctx_).resume());
	} catch (const boost::context::detail::forced_unwind &) {
		self->after_switch_in(nullptr);
		throw;
	}
}

inline void Fiber::land(boost::context::fiber &&from) {
	Fiber *previous = switched_from_;
	after_switch_in(previous);
	if (!previous) {
		scheduler_ = std::move(from);
		return;
	}
	// The fiber that switched to us is off its stack now: its context can be stored, and
	// from here on it may be resumed (the host makes it runnable only after this).
	switched_from_ = nullptr;
	previous->ctx_ = std::move(from);
	previous->running_ = false;
	previous->check_canary();
	scheduler_ = std::move(previous->scheduler_);
}

void Fiber::abandon() {
	HostThread &hc = this_host_thread();
	Fiber *self = hc.fiber;
	self->abandoned_ = true;
#ifdef HELSIM_ASAN
	// As switch_out(): the fake stack is saved, and freed by switch_in() with the stack.
	__sanitizer_start_switch_fiber(&self->asan_fake_stack_, self->scheduler_stack_bottom_,
			self->scheduler_stack_size_);
#endif
#ifdef HELSIM_TSAN
	__tsan_switch_to_fiber(hc.tsan_scheduler, 0);
#endif
	self->scheduler_ = std::move(self->scheduler_).resume();
	__builtin_trap(); // nothing resumes an abandoned fiber: its stack is gone
}

inline void Fiber::after_switch_in([[maybe_unused]] const Fiber *previous) {
#ifdef HELSIM_ASAN
	if (previous) {
		// The stack we leave is the previous fiber's; the one to return to is the scheduler's
		// that it would have returned to.
		__sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
		scheduler_stack_bottom_ = previous->scheduler_stack_bottom_;
		scheduler_stack_size_ = previous->scheduler_stack_size_;
		return;
	}
	// Records the stack of the scheduler we run for now, the one to return to.
	__sanitizer_finish_switch_fiber(asan_fake_stack_, &scheduler_stack_bottom_,
			&scheduler_stack_size_);
#endif
}

bool current_exception_unwinds_fiber() {
	try {
		throw;
	} catch (const boost::context::detail::forced_unwind &) {
		return true;
	} catch (...) {
		return false;
	}
}

void Fiber::unwind() {
	if (!ctx_ || finished_)
		return;
	HostThread &hc = this_host_thread();
	Fiber *previous = hc.fiber;
	hc.fiber = this;
#ifdef HELSIM_TSAN
	void *me = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
#ifdef HELSIM_ASAN
	// As in switch_in(): ASan must know the unwind runs on the fiber's stack, or the throw
	// that unwinds it trips over stale poison there. The fiber's side of the handshake is in
	// switch_out() and in the entry lambda of create(). A fiber that never ran unwinds at its
	// entry, before any of our code, so it gets no annotation (its stack is still clean).
	void *fake = nullptr;
	if (entered_)
		__sanitizer_start_switch_fiber(&fake, stack_.bottom, stack_.size);
#endif
	// Destroying a suspended boost fiber resumes it with a forced_unwind exception that runs
	// every destructor on its stack, then frees the stack.
	ctx_ = boost::context::fiber{};
#ifdef HELSIM_ASAN
	if (entered_)
		__sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
#ifdef HELSIM_TSAN
	__tsan_switch_to_fiber(me, 0);
#endif
	this_host_thread().fiber = previous;
	finished_ = true;
	free_fake_stack();
}

void Fiber::free_fake_stack() {
#ifdef HELSIM_ASAN
	// ASan frees a fake stack when a fiber's last switch passes no save slot, but at once,
	// while the frames that this switch still returns through (the entry lambda's return value,
	// boost's fiber_record::run) may live on it. So the last switch saves it like any other,
	// and once the fiber's stack is done, this thread adopts it for a moment to free it: two
	// switch annotations without a stack switch, on this thread's own stack (the one the fiber
	// recorded when it was last resumed).
	if (!asan_fake_stack_)
		return;
	void *own = nullptr;
	__sanitizer_start_switch_fiber(&own, scheduler_stack_bottom_, scheduler_stack_size_);
	__sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
	__sanitizer_start_switch_fiber(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
	__sanitizer_finish_switch_fiber(own, nullptr, nullptr);
	asan_fake_stack_ = nullptr;
#endif
}

} // namespace helsim::sim
