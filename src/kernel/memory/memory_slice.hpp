// Memory slices (helCreateSliceView): a window onto a view. A slice is mapped, or put into an
// indirect view's slot, like the part of the view it shows.
#pragma once

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

// A slice grants nothing but access and mapping.
inline constexpr std::uint32_t kSliceDefaultRights =
		kHelRightRead | kHelRightWrite | kHelRightExecute | kHelRightAssign;

class MemorySlice final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::memory_slice;

	MemorySlice(Kernel &kernel, Ref<MemoryView> view, std::size_t offset, std::size_t size,
			std::uint32_t flags)
	: Object{kernel, ObjectKind::memory_slice}, view_{std::move(view)}, offset_{offset},
	  size_{size}, flags_{flags} {}
	const char *describe() const override { return "memory slice"; }

	const Ref<MemoryView> &view() const { return view_; }
	std::size_t offset() const { return offset_; }
	std::size_t size() const { return size_; }
	std::uint32_t flags() const { return flags_; }
	void for_each_reference(const std::function<void(Object &)> &f) override { f(*view_); }

private:
	Ref<MemoryView> view_;
	std::size_t offset_;
	std::size_t size_;
	std::uint32_t flags_; // kHelSliceCacheWriteCombine: recorded, no effect on simulated RAM
};

} // namespace helsim::kernel
