#include "fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <new>
#include <utility>

#include <boost/context/stack_context.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define HELSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HELSIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HELSIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HELSIM_TSAN 1
#endif
#endif

#ifdef HELSIM_ASAN
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
		size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
		size_t *size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef HELSIM_TSAN
extern "C" void *__tsan_get_current_fiber();
extern "C" void *__tsan_create_fiber(unsigned flags);
extern "C" void __tsan_destroy_fiber(void *fiber);
extern "C" void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

namespace helsim::sim {
namespace {

// Per host thread: the scheduler context a running fiber returns to.
struct HostContext {
	boost::context::fiber scheduler;
	Fiber *running = nullptr;
	const void *scheduler_stack_bottom = nullptr;
	std::size_t scheduler_stack_size = 0;
	void *asan_fake_stack = nullptr;
	void *tsan_scheduler = nullptr;
};

// A fiber that switched out may resume on another host thread. The compiler is allowed to
// keep the address of a thread_local across a call, so every access goes through this
// out-of-line function, which the asm barrier keeps from being treated as pure.
__attribute__((noinline)) HostContext &host_context() {
	static thread_local HostContext context;
	asm volatile("" ::: "memory");
	return context;
}

// Guard-paged stacks: one PROT_NONE page below the usable stack catches overflows.
struct GuardedStack {
	std::size_t size;
	void **bottom_out;

	boost::context::stack_context allocate() {
		const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
		const std::size_t usable = (size + page - 1) & ~(page - 1);
		void *base = mmap(nullptr, usable + page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED)
			throw std::bad_alloc{};
		mprotect(base, page, PROT_NONE);
		*bottom_out = static_cast<char *>(base) + page;
		boost::context::stack_context sctx;
		sctx.size = usable;
		sctx.sp = static_cast<char *>(base) + page + usable;
		return sctx;
	}

	void deallocate(boost::context::stack_context &sctx) noexcept {
		const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
		void *base = static_cast<char *>(sctx.sp) - sctx.size - page;
#ifdef HELSIM_ASAN
		// A fiber that never returned (unwound, or parked at teardown) leaves its frames'
		// redzones poisoned; the next mapping at this address (simulated physical memory,
		// say) would inherit them.
		__asan_unpoison_memory_region(static_cast<char *>(base) + page, sctx.size);
#endif
		munmap(base, sctx.size + page);
	}
};

void after_switch_into_fiber([[maybe_unused]] Fiber *self) {
#ifdef HELSIM_ASAN
	auto &hc = host_context();
	__sanitizer_finish_switch_fiber(hc.asan_fake_stack, &hc.scheduler_stack_bottom,
			&hc.scheduler_stack_size);
#endif
}

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
	body_ = std::move(body);
	stack_size_ = stack_size;
#ifdef HELSIM_TSAN
	tsan_fiber_ = __tsan_create_fiber(0);
#endif
	ctx_ = boost::context::fiber{std::allocator_arg, GuardedStack{stack_size, &stack_bottom_},
			[this](boost::context::fiber &&scheduler) {
				host_context().scheduler = std::move(scheduler);
				after_switch_into_fiber(this);
				try {
					body_();
				} catch (const boost::context::detail::forced_unwind &) {
			// Fiber::unwind() is done with this stack; boost switches back to the
			// unwinding thread once the exception reaches the fiber's entry.
#ifdef HELSIM_ASAN
					auto &hc = host_context();
					__sanitizer_start_switch_fiber(nullptr, hc.scheduler_stack_bottom,
							hc.scheduler_stack_size);
#endif
					throw;
				}
				body_ = nullptr;
				auto &hc = host_context();
#ifdef HELSIM_ASAN
				__sanitizer_start_switch_fiber(nullptr, hc.scheduler_stack_bottom,
						hc.scheduler_stack_size);
#endif
				// TSan switches back in switch_in(), once this lambda's instrumented frames
				// have exited on the fiber's own shadow stack: switching here would pop them
				// off the scheduler's, which underflows it.
				return std::move(hc.scheduler);
			}};
}

void Fiber::switch_in() {
	auto &hc = host_context();
	hc.running = this;
	running_ = true;
	entered_ = true;
#ifdef HELSIM_ASAN
	void *fake = nullptr;
	// stack_bottom_ is only known once the stack exists; boost allocates it in create().
	__sanitizer_start_switch_fiber(&fake, stack_bottom_, stack_size_);
#endif
#ifdef HELSIM_TSAN
	if (!hc.tsan_scheduler)
		hc.tsan_scheduler = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
	ctx_ = std::move(ctx_).resume();
#ifdef HELSIM_ASAN
	__sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
#ifdef HELSIM_TSAN
	if (!ctx_) // the body returned: TSan still runs on the fiber's state (see create())
		__tsan_switch_to_fiber(hc.tsan_scheduler, 0);
#endif
	running_ = false;
	host_context().running = nullptr;
	if (!ctx_)
		finished_ = true;
}

void Fiber::switch_out() {
	auto &hc = host_context();
#ifdef HELSIM_ASAN
	__sanitizer_start_switch_fiber(&hc.asan_fake_stack, hc.scheduler_stack_bottom,
			hc.scheduler_stack_size);
#endif
#ifdef HELSIM_TSAN
	__tsan_switch_to_fiber(hc.tsan_scheduler, 0);
#endif
	Fiber *self = hc.running;
	boost::context::fiber next;
	try {
		next = std::move(hc.scheduler).resume();
	} catch (const boost::context::detail::forced_unwind &) {
		// Fiber::unwind() resumed us, on its own host thread, to unwind this stack.
		after_switch_into_fiber(self);
		throw;
	}
	// Possibly another host thread now: look the context up again.
	host_context().scheduler = std::move(next);
	after_switch_into_fiber(self);
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
	auto &hc = host_context();
	Fiber *previous = hc.running;
	hc.running = this;
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
		__sanitizer_start_switch_fiber(&fake, stack_bottom_, stack_size_);
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
	host_context().running = previous;
	finished_ = true;
}

} // namespace helsim::sim
