#include "kernel/core/universe.hpp"

#include <new>
#include <vector>

#include "kernel/core/kernel.hpp"

namespace helsim::kernel {

Ref<Universe> UniverseAnchor::lock() {
	std::lock_guard lock{mutex_};
	if (universe_ && universe_->try_ref())
		return Ref<Universe>::adopt(universe_);
	return nullptr;
}

void UniverseAnchor::clear() {
	std::lock_guard lock{mutex_};
	universe_ = nullptr;
}

Universe::Universe(Kernel &kernel)
: Object{kernel, ObjectKind::universe}, id_{kernel.new_universe_id()},
  anchor_{std::make_shared<UniverseAnchor>(this)} {
	// Committed page by page: untouched directory pages cost nothing.
	void *p = sim::host_operations().allocate(kDirectorySize * sizeof(std::atomic<Segment *>));
	if (!p)
		throw std::bad_alloc{};
	directory_ = static_cast<std::atomic<Segment *> *>(p);
}

Universe::~Universe() {
	anchor_->clear();
	close_all();
	for (std::size_t s = 0; s < kDirectorySize; ++s) {
		if (Segment *segment = directory_[s].load(std::memory_order_relaxed))
			delete segment;
		else if (static_cast<std::int64_t>(s << kSegmentBits) >= next_handle_)
			break;
	}
	sim::host_operations().release(directory_, kDirectorySize * sizeof(std::atomic<Segment *>));
}

void Universe::close_all() {
	// Dropping a reference may destroy another universe, whose destructor closes more: take
	// the objects out under the lock, release them after it.
	std::vector<Object *> objects;
	{
		std::lock_guard lock{writer_mutex_};
		for (std::size_t s = 0; static_cast<std::int64_t>(s << kSegmentBits) < next_handle_; ++s) {
			Segment *segment = directory_[s].load(std::memory_order_relaxed);
			if (!segment)
				continue;
			for (auto &slot : segment->slots)
				if (Object *object = slot.object.exchange(nullptr, std::memory_order_seq_cst))
					objects.push_back(object);
		}
		open_.store(0, std::memory_order_relaxed);
		wait_for_readers();
	}
	for (Object *object : objects) {
		object->handle_closed();
		object->unref();
	}
}

HelError Universe::attach(Ref<Object> object, std::uint32_t rights, HelHandle &out) {
	std::lock_guard lock{writer_mutex_};
	std::int64_t handle = next_handle_;
	std::size_t s = static_cast<std::size_t>(handle) >> kSegmentBits;
	if (s >= kDirectorySize)
		return kHelErrNoMemory;
	Segment *segment = directory_[s].load(std::memory_order_relaxed);
	if (!segment) {
		if (kernel().fail_at(FaultPoint::handle_table_growth)) [[unlikely]]
			return kHelErrNoMemory;
		segment = new (std::nothrow) Segment;
		if (!segment)
			return kHelErrNoMemory;
		directory_[s].store(segment, std::memory_order_release);
	}
	Slot &slot = segment->slots[handle & (kSegmentSlots - 1)];
	object->handle_opened();
	slot.rights = rights & object->rights_mask();
	slot.object.store(object.release(), std::memory_order_seq_cst);
	++next_handle_;
	open_.fetch_add(1, std::memory_order_relaxed);
	out = handle;
	return kHelErrNone;
}

HelHandle Universe::handle_of(const Object &object) {
	std::lock_guard lock{writer_mutex_};
	// Handle h lives in segment h >> kSegmentBits, slot h & (kSegmentSlots - 1) (see attach).
	for (std::size_t s = 0; static_cast<std::int64_t>(s << kSegmentBits) < next_handle_; ++s) {
		Segment *segment = directory_[s].load(std::memory_order_relaxed);
		if (!segment)
			continue;
		for (std::size_t i = 0; i < kSegmentSlots; ++i)
			if (segment->slots[i].object.load(std::memory_order_relaxed) == &object)
				return static_cast<HelHandle>((s << kSegmentBits) | i);
	}
	return kHelNullHandle;
}

HelError Universe::lookup(HelHandle handle, Resolved &out) {
	if (handle <= 0)
		return kHelErrNoDescriptor;
	std::size_t s = static_cast<std::size_t>(handle) >> kSegmentBits;
	if (s >= kDirectorySize)
		return kHelErrNoDescriptor;
	auto &readers = readers_[epoch_.load(std::memory_order_seq_cst) & 1];
	readers.fetch_add(1, std::memory_order_seq_cst);
	HelError error = kHelErrNoDescriptor;
	if (Segment *segment = directory_[s].load(std::memory_order_seq_cst)) {
		Slot &slot = segment->slots[handle & (kSegmentSlots - 1)];
		if (Object *object = slot.object.load(std::memory_order_seq_cst)) {
			object->ref();
			out.object = Ref<Object>::adopt(object);
			out.rights = slot.rights;
			error = kHelErrNone;
		}
	}
	readers.fetch_sub(1, std::memory_order_release);
	return error;
}

void Universe::wait_for_readers() {
	std::uint32_t old = epoch_.fetch_add(1, std::memory_order_seq_cst);
	while (readers_[old & 1].load(std::memory_order_acquire) != 0)
		__builtin_ia32_pause(); // readers leave within a few instructions
}

HelError Universe::close(HelHandle handle) {
	if (handle <= 0)
		return kHelErrNoDescriptor;
	Object *object;
	Segment *dead_segment = nullptr;
	{
		std::lock_guard lock{writer_mutex_};
		std::size_t s = static_cast<std::size_t>(handle) >> kSegmentBits;
		if (s >= kDirectorySize || handle >= next_handle_)
			return kHelErrNoDescriptor;
		Segment *segment = directory_[s].load(std::memory_order_relaxed);
		if (!segment)
			return kHelErrNoDescriptor;
		object = segment->slots[handle & (kSegmentSlots - 1)].object.exchange(nullptr,
				std::memory_order_seq_cst);
		if (!object)
			return kHelErrNoDescriptor;
		open_.fetch_sub(1, std::memory_order_relaxed);
		// A segment whose every handle was handed out and closed can never be used again.
		if (segment->closed.fetch_add(1, std::memory_order_relaxed) + 1 == kSegmentSlots) {
			directory_[s].store(nullptr, std::memory_order_seq_cst);
			dead_segment = segment;
		}
		wait_for_readers();
	}
	delete dead_segment;
	object->handle_closed();
	object->unref();
	return kHelErrNone;
}

} // namespace helsim::kernel
