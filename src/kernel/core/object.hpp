// Every kernel object: reference counted, of a kind (a row of the kernel's ObjectKinds), and
// registered with its kernel so that teardown can name whatever is still alive.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

#include <helsim/hel.h>

#include "kernel/core/object_kinds.hpp"

namespace helsim::kernel {

class Kernel;
class IpcQueue;
class Object;
class Awaitable;

// An asynchronous operation still waiting inside a kernel object, for the deadlock report:
// it will complete (post a completion element) to `queue` with `context`. `action` names it
// as hel does ("recvInline", "accept", "manageMemory", ...); `on` is the object it was
// submitted on (the lane, the backing memory view), whose handle the report looks up.
// The pointers are valid only during the for_each_pending callback (the object's lock is
// held then): a caller that keeps `on` takes a reference.
struct PendingOperation {
	const IpcQueue *queue = nullptr;
	std::uintptr_t context = 0;
	const char *action = "";
	Object *on = nullptr;
};

class Object {
public:
	Object(Kernel &kernel, ObjectKind kind);
	Object(const Object &) = delete;
	Object &operator=(const Object &) = delete;
	virtual ~Object() = default;

	ObjectKind kind() const { return kind_; }
	Kernel &kernel() const { return kernel_; }
	// The kind's row: its name (reports, traces) and the type helDescriptorInfo reports.
	const char *kind_name() const;
	int descriptor_type() const;
	// The rights a descriptor of this object can carry (its kind's): what attach keeps.
	std::uint32_t rights_mask() const { return rights_mask_; }
	// A short description for leak and deadlock reports.
	virtual const char *describe() const { return kind_name(); }
	// Calls f for every object this one keeps alive, for the leak report's reachability walk.
	virtual void for_each_reference(const std::function<void(Object &)> &f) { (void)f; }
	// Machine teardown: complete whatever still waits inside this object, so that the
	// references pending work holds are released.
	virtual void abandon() {}
	// Machine teardown of a Teardown::close_handles kind (a universe): the descriptors it
	// holds, and dropping them all.
	virtual std::size_t descriptors_held() const { return 0; }
	virtual void close_handles() {}
	// Calls f for every asynchronous operation waiting inside this object (not yet paired or
	// served), under the object's own lock. Report time only (the deadlock report); never on
	// a hot path. Default: nothing waits here.
	virtual void for_each_pending(const std::function<void(const PendingOperation &)> &f) {
		(void)f;
	}

	// What kHelSubmitAwaitEvent waits on, if this object is something it can wait on
	// (event.hpp); nullptr otherwise.
	virtual Awaitable *awaitable() { return nullptr; }

	// A handle to this object was attached to a universe, or closed (with no universe lock
	// held). Threads count them: the last close kills the thread.
	virtual void handle_opened() {}
	virtual void handle_closed() {}

	void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
	// Takes a reference unless the count already reached zero (for weak references).
	bool try_ref() {
		std::int64_t n = refs_.load(std::memory_order_relaxed);
		while (n > 0)
			if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_acquire))
				return true;
		return false;
	}
	void unref() {
		if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
			retire();
	}
	std::int64_t refs() const { return refs_.load(std::memory_order_relaxed); }

	// Registry links (guarded by the kernel's object registry lock). An object is in the
	// registry from the end of its construction (make_object) until its last reference is
	// dropped.
	Object *registry_prev = nullptr;
	Object *registry_next = nullptr;

protected:
	// Default: delete. An override (a lane breaking its stream) runs with the object already
	// out of the registry, and must end by deleting it.
	virtual void last_reference_dropped() { delete this; }

private:
	// The last reference is gone: the object leaves the kernel's registry, then
	// last_reference_dropped runs. A walk of the registry (the run report, teardown) calls
	// the objects' virtual functions under the registry lock, so it must never meet an
	// object whose destructor has begun.
	void retire();

	Kernel &kernel_;
	ObjectKind kind_;
	std::uint32_t rights_mask_;
	std::atomic<std::int64_t> refs_{1};
};

// Owning reference. Ref<T>::adopt takes over the reference a new object starts with.
template <typename T>
class Ref {
public:
	Ref() = default;
	Ref(std::nullptr_t) {}
	explicit Ref(T *p) : p_{p} {
		if (p_)
			p_->ref();
	}
	static Ref adopt(T *p) {
		Ref r;
		r.p_ = p;
		return r;
	}
	Ref(const Ref &o) : Ref{o.p_} {}
	Ref(Ref &&o) noexcept : p_{std::exchange(o.p_, nullptr)} {}
	template <typename U>
	Ref(Ref<U> &&o) noexcept : p_{o.release()} {}
	template <typename U>
	Ref(const Ref<U> &o) : Ref{static_cast<T *>(o.get())} {}
	Ref &operator=(Ref o) noexcept {
		std::swap(p_, o.p_);
		return *this;
	}
	~Ref() {
		if (p_)
			p_->unref();
	}

	T *get() const { return p_; }
	T *operator->() const { return p_; }
	T &operator*() const { return *p_; }
	explicit operator bool() const { return p_ != nullptr; }
	T *release() { return std::exchange(p_, nullptr); }

private:
	T *p_ = nullptr;
};

// The one way to create a kernel object: it joins its kernel's registry only once its
// most-derived constructor has finished, so a walk of the registry on another thread never
// meets an object under construction (whose vptr and fields are not yet its own). A class with
// a private constructor befriends this. Objects created otherwise are never registered, and
// retire() would unlink one from a list it is not in.
template <typename T, typename... Args>
Ref<T> make_object(Args &&...args) {
	auto object = Ref<T>::adopt(new T(std::forward<Args>(args)...));
	object->kernel().register_object(*object);
	return object;
}

} // namespace helsim::kernel
