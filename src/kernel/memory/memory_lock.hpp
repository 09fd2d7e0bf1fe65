// Memory locks (SQ LockMemoryView): a handle that keeps a range of a view present, with
// stable frames, until its last reference goes. DMA drivers take them before handing
// physical addresses to a device.
#pragma once

#include <cstddef>

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

class MemoryViewLock final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::memory_view_lock;

	// Takes over the pin of [offset, offset + size) that the caller already holds.
	MemoryViewLock(Kernel &kernel, Ref<MemoryView> view, std::size_t offset, std::size_t size)
	: Object{kernel, ObjectKind::memory_view_lock}, view_{std::move(view)}, offset_{offset},
	  size_{size} {}
	~MemoryViewLock() override { view_->unpin(offset_, size_); }
	const char *describe() const override { return "memory lock"; }
	void for_each_reference(const std::function<void(Object &)> &f) override { f(*view_); }

private:
	Ref<MemoryView> view_;
	std::size_t offset_;
	std::size_t size_;
};

} // namespace helsim::kernel
