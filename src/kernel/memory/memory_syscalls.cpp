// helAllocateMemory, the address space calls, and the SQ operations on spaces and views.
#include "kernel/memory/memory_syscalls.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/devices/dma_space.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/allocated_memory.hpp"
#include "kernel/memory/bounce_copy.hpp"
#include "kernel/memory/memory_slice.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/memory/swap_space.hpp"
#include "kernel/memory/swappable_memory.hpp"
#include "kernel/memory/usercopy.hpp"

namespace helsim::kernel {

Lookup<AddressSpace> resolve_space(Thread &self, HelHandle handle, std::uint32_t rights) {
	if (handle == kHelNullHandle) {
		Lookup<AddressSpace> result;
		result.object = self.space_ref();
		result.rights = kSpaceDefaultRights;
		return result;
	}
	return self.universe().resolve<AddressSpace>(handle, rights);
}

Lookup<MemoryView> resolve_view(Thread &self, HelHandle handle, std::uint32_t rights) {
	return self.universe().resolve<MemoryView>(handle, rights);
}

namespace {

constexpr std::uint32_t kProtMask = kHelMapProtRead | kHelMapProtWrite | kHelMapProtExecute;

// What helMapMemory maps: a view, a slice of one, or a queue's ring, as (view, window) with
// the window's offset and size inside the view.
struct Mappable {
	Ref<MemoryView> view;
	std::size_t base = 0;
	std::size_t size = 0;
};

HelError resolve_mappable(Thread &self, HelHandle handle, std::uint32_t rights, Mappable &out) {
	Resolved r;
	if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone)
		return e;
	switch (r.object->kind()) {
	case ObjectKind::memory_view:
		out.view = Ref<MemoryView>{static_cast<MemoryView *>(r.object.get())};
		out.size = out.view->size();
		break;
	case ObjectKind::memory_slice: {
		auto *slice = static_cast<MemorySlice *>(r.object.get());
		out.view = slice->view();
		out.base = slice->offset();
		out.size = slice->size();
		break;
	}
	case ObjectKind::queue:
		out.view = static_cast<IpcQueue *>(r.object.get())->memory();
		out.size = out.view->size();
		break;
	default: return kHelErrBadDescriptor;
	}
	if ((r.rights & rights) != rights)
		return kHelErrBadRights;
	return kHelErrNone;
}

// SQ Read/WriteMemory: a copy between the caller's buffer and a view or a space, completed
// on the queue once every page was there (a pager may have to provide some first).
class MemoryCopyOp final : public BounceCopy {
public:
	MemoryCopyOp(IpcQueue &queue, std::uintptr_t context, CopyEndpoint source, CopyEndpoint target,
			std::size_t length)
	: BounceCopy{std::move(source), std::move(target), length}, queue_{&queue}, context_{context} {}

private:
	void done(HelError error, bool) override {
		queue_->post_simple(error, context_);
		delete this;
	}

	Ref<IpcQueue> queue_;
	std::uintptr_t context_;
};

// HelSqReadMemory and HelSqWriteMemory share their layout.
template <typename Request>
HelError submit_memory_copy(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const Request &request, bool write) {
	CopyEndpoint remote;
	remote.address = request.address;
	// Read to read, Write to write, whatever the handle names (as thor).
	std::uint32_t needed = write ? kHelRightWrite : kHelRightRead;
	Resolved r;
	if (HelError e = self.universe().lookup(request.handle, r); e != kHelErrNone) {
		if (request.handle != kHelNullHandle && request.handle != kHelThisThread)
			return e;
		remote.space = self.space_ref(); // the caller's own space
	} else if (ObjectKind kind = r.object->kind(); kind != ObjectKind::memory_view &&
			   kind != ObjectKind::address_space && kind != ObjectKind::thread) {
		return kHelErrBadDescriptor;
	} else if ((r.rights & needed) != needed) {
		return kHelErrBadRights;
	} else if (kind == ObjectKind::memory_view) {
		remote.view = Ref<MemoryView>{static_cast<MemoryView *>(r.object.get())};
		if (request.address > remote.view->size() ||
				request.length > remote.view->size() - request.address)
			return kHelErrOutOfBounds;
	} else if (kind == ObjectKind::address_space) {
		remote.space = Ref<AddressSpace>{static_cast<AddressSpace *>(r.object.get())};
	} else {
		remote.space = static_cast<Thread *>(r.object.get())->space_of_other();
		if (!remote.space)
			return kHelErrThreadTerminated;
	}
	CopyEndpoint local{self.space_ref(), nullptr, nullptr,
			reinterpret_cast<std::uintptr_t>(request.buffer)};
	// Allocated before the operation counts as submitted: if the allocation throws, the
	// element gets the kHelErrNoMemory submission error and nothing is left pending.
	auto *op = write
			? new MemoryCopyOp{queue, context, std::move(local), std::move(remote), request.length}
			: new MemoryCopyOp{queue, context, std::move(remote), std::move(local), request.length};
	self.note_submitted();
	op->start();
	return kHelErrNone;
}

} // namespace

namespace {

// helAllocateMemory's restrictions: null means none.
template <int I>
struct Restrictions {
	using Value = HelAllocRestrictions;
	static constexpr ParamInfo info{ParamKind::user_in, I};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		out = {};
		auto *user = arg<const HelAllocRestrictions *>(args, I);
		return user ? copy_from_user(self, &out, user, sizeof(out)) : kHelErrNone;
	}
};

HelError sys_allocate_memory(Thread &self, std::size_t size, std::uint32_t flags,
		const HelAllocRestrictions &restrictions, HelWord *outs) {
	Ref<AllocatedMemory> memory;
	if (HelError e = AllocatedMemory::create(self.kernel(), size, flags, restrictions.addressBits,
				memory);
			e != kHelErrNone)
		return e;
	return attach_new(self, std::move(memory), kMemoryDefaultRights, outs);
}

HelError sys_create_space(Thread &self, HelWord *outs) {
	Ref<AddressSpace> space = self.kernel().create_space();
	if (!space->valid())
		return kHelErrNoMemory;
	return attach_new(self, std::move(space), kSpaceDefaultRights, outs);
}

// helMapMemory(handle, space, pointer, offset, size, flags), up to the space: the flags
// (known bits, not both fixed modes), a non-empty page-aligned window and, for a fixed
// mapping, an address (kHelErrIllegalArgs); then the memory, whose rights the protection
// decides, and the window inside it (kHelErrBufferTooSmall).
struct Mapping {
	Mappable memory;
	std::uintptr_t pointer = 0;
	std::uintptr_t offset = 0;
	std::size_t size = 0;
	std::uint32_t flags = 0;
};

HelError decode_mapping(Thread &self, const HelWord *args, Mapping &out) {
	out.pointer = arg<std::uintptr_t>(args, 2);
	out.offset = arg<std::uintptr_t>(args, 3);
	out.size = arg<std::size_t>(args, 4);
	out.flags = arg<std::uint32_t>(args, 5);
	constexpr std::uint32_t kKnown = kProtMask | kHelMapDontRequireBacking | kHelMapFixed |
			kHelMapFixedNoReplace | kHelMapPreferBottom;
	if (out.flags & ~kKnown)
		return kHelErrIllegalArgs;
	bool fixed = out.flags & (kHelMapFixed | kHelMapFixedNoReplace);
	if ((out.flags & kHelMapFixed) && (out.flags & kHelMapFixedNoReplace))
		return kHelErrIllegalArgs;
	if (!out.size || !page_aligned(out.pointer) || !page_aligned(out.offset) ||
			!page_aligned(out.size))
		return kHelErrIllegalArgs;
	if (fixed && !out.pointer)
		return kHelErrIllegalArgs;
	std::uint32_t rights = kHelRightAssign;
	if (out.flags & kHelMapProtRead)
		rights |= kHelRightRead;
	if (out.flags & kHelMapProtWrite)
		rights |= kHelRightWrite;
	if (out.flags & kHelMapProtExecute)
		rights |= kHelRightExecute;
	if (HelError e = resolve_mappable(self, arg<HelHandle>(args, 0), rights, out.memory);
			e != kHelErrNone)
		return e;
	if (out.offset > out.memory.size || out.size > out.memory.size - out.offset)
		return kHelErrBufferTooSmall;
	return kHelErrNone;
}

HelError sys_map_memory(Thread &, Mapping &mapping, Lookup<AddressSpace> &space, HelWord *outs) {
	std::uintptr_t address;
	if (HelError e = space.object->map(std::move(mapping.memory.view),
				mapping.memory.base + mapping.offset, mapping.pointer, mapping.size, mapping.flags,
				address);
			e != kHelErrNone)
		return e;
	outs[0] = address;
	return kHelErrNone;
}

// A non-empty, page-aligned range inside user space at word P, word S long (page_range):
// kHelErrIllegalArgs.
struct PageRange {
	std::uintptr_t pointer = 0;
	std::size_t size = 0;
};

template <int P, int S>
struct Pages {
	using Value = PageRange;
	static constexpr ParamInfo info{ParamKind::address, P, S};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = {arg<std::uintptr_t>(args, P), arg<std::size_t>(args, S)};
		return page_range(out.pointer, out.size) ? kHelErrNone : kHelErrIllegalArgs;
	}
};

HelError sys_unmap_memory(Thread &, const PageRange &range, Lookup<AddressSpace> &space) {
	return space.object->unmap(range.pointer, range.size);
}

HelError sys_memory_info(Thread &, Lookup<MemoryView> &view, HelWord *outs) {
	outs[0] = view.object->size();
	return kHelErrNone;
}

HelError sys_pointer_physical(Thread &, Lookup<AddressSpace> &space, std::uintptr_t pointer,
		HelWord *outs) {
	if (!space.object->in_window(pointer, 1))
		return kHelErrFault; // host memory has no simulated physical address
	sim::PhysicalAddr physical;
	if (HelError e = space.object->physical_of(pointer, physical); e != kHelErrNone)
		return e;
	outs[0] = physical;
	return kHelErrNone;
}

// A page-aligned word: kHelErrIllegalArgs.
template <int I>
using PageAligned = Checked<ParamKind::word, I, std::uintptr_t, page_aligned>;

// Checked as thor checks it, then ignored (thor's body is commented out).
HelError sys_loadahead(Thread &, std::uintptr_t, std::uintptr_t, Lookup<MemoryView> &) {
	return kHelErrNone;
}

HelError sys_create_slice_view(Thread &self, std::uintptr_t offset, std::size_t size,
		std::uint32_t flags, Lookup<MemoryView> &view, HelWord *outs) {
	return create_slice_view(self, view, offset, size, flags, outs);
}

// helUpdateMemory's type: kHelErrIllegalArgs for another than initialize and writeback.
bool manage_type(int type) { return type == kHelManageInitialize || type == kHelManageWriteback; }
template <int I>
using ManageType = Checked<ParamKind::word, I, int, manage_type>;

HelError sys_update_memory(Thread &self, std::uintptr_t offset, std::size_t length,
		Lookup<MemoryView> &view, int type) {
	return update_memory(self, *view.object, type, offset, length);
}

// helAllocateSwappableMemory's size: non-zero and page-aligned (kHelErrIllegalArgs), at most
// SwappableMemory::kMaxSize (kHelErrNoMemory).
template <int I>
struct SwappableSize {
	using Value = std::size_t;
	static constexpr ParamInfo info{ParamKind::word, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<std::size_t>(args, I);
		if (out == 0 || !page_aligned(out))
			return kHelErrIllegalArgs;
		return out > SwappableMemory::kMaxSize ? kHelErrNoMemory : kHelErrNone;
	}
};

HelError sys_allocate_swappable_memory(Thread &self, std::uint32_t, std::size_t size,
		Lookup<SwapSpace> &swap, HelWord *outs) {
	return attach_new(self, make_object<SwappableMemory>(self.kernel(), swap.object->store(), size),
			kMemoryDefaultRights, outs);
}

HelError sys_set_swap_budget(Thread &, Lookup<SwapSpace> &swap, std::size_t pages) {
	return swap.object->store()->set_budget(pages);
}

} // namespace

HelError sq_protect_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqProtectMemory &request, Lookup<AddressSpace> &space) {
	auto pointer = reinterpret_cast<std::uintptr_t>(request.pointer);
	if ((request.flags & ~kProtMask) || !page_range(pointer, request.size))
		return complete_at_once(self, queue, context, kHelErrIllegalArgs);
	return complete_at_once(self, queue, context,
			space.object->protect(pointer, request.size, request.flags));
}

HelError sq_synchronize_space(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqSynchronizeSpace &request, Lookup<AddressSpace> &space) {
	auto pointer = reinterpret_cast<std::uintptr_t>(request.pointer);
	if (!page_range(pointer, request.size))
		return complete_at_once(self, queue, context, kHelErrIllegalArgs);
	return complete_at_once(self, queue, context, space.object->synchronize(pointer, request.size));
}

HelError sq_read_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqReadMemory &request) {
	return submit_memory_copy(self, queue, context, request, false);
}

HelError sq_write_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqWriteMemory &request) {
	return submit_memory_copy(self, queue, context, request, true);
}

HelError sq_resize_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqResizeMemory &request, Lookup<MemoryView> &view) {
	return complete_at_once(self, queue, context, view.object->resize(request.newSize));
}

// ---------------------------------------------------------------- the 2022 submissions

namespace {

HelError sys_legacy_protect_memory(Thread &self, HelHandle space, void *pointer, std::size_t size,
		std::uint32_t flags, HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitProtectMemory, queue, context,
			HelSqProtectMemory{space, pointer, size, flags});
}

HelError sys_legacy_synchronize_space(Thread &self, HelHandle space, void *pointer,
		std::size_t size, HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitSynchronizeSpace, queue, context,
			HelSqSynchronizeSpace{space, pointer, size});
}

HelError sys_legacy_read_memory(Thread &self, HelHandle handle, std::uintptr_t address,
		std::size_t length, void *buffer, HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitReadMemory, queue, context,
			HelSqReadMemory{handle, address, length, buffer});
}

HelError sys_legacy_write_memory(Thread &self, HelHandle handle, std::uintptr_t address,
		std::size_t length, const void *buffer, HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitWriteMemory, queue, context,
			HelSqWriteMemory{handle, address, length, buffer});
}

HelError sys_legacy_manage_memory(Thread &self, HelHandle handle, HelHandle queue,
		std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitManageMemory, queue, context, HelSqManageMemory{handle});
}

HelError sys_legacy_lock_memory_view(Thread &self, HelHandle handle, std::uintptr_t offset,
		std::size_t size, HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitLockMemoryView, queue, context,
			HelSqLockMemoryView{handle, offset, size});
}

// The legacy submissions decode nothing of their own: the SQ operation they submit checks
// the request, and the queue handle is resolved first (submit_legacy).
using SpaceWord = HandleWord<0, ObjectKind::address_space>;
using ViewWord = HandleWord<0, ObjectKind::memory_view>;
template <int I>
using QueueWord = HandleWord<I, ObjectKind::queue>;

} // namespace

void register_memory_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateSpace,
			syscall_row<sys_create_space>("helCreateSpace", "> *handle"));
	calls.add_syscall(kHelCallMapMemory,
			syscall_row<sys_map_memory, Decoded<decode_mapping>,
					Handle<1, AddressSpace, kHelRightGrant, resolve_space_or_dma>>("helMapMemory",
					"*handle *space &pointer offset size flags > &actualPointer"));
	calls.add_syscall(kHelCallUnmapMemory,
			syscall_row<sys_unmap_memory, Pages<1, 2>,
					Handle<0, AddressSpace, kHelRightGrant, resolve_space_or_dma>>("helUnmapMemory",
					"*space &pointer size"));
	calls.add_syscall(kHelCallAllocateMemory,
			syscall_row<sys_allocate_memory, Word<0, std::size_t>, Word<1, std::uint32_t>,
					Restrictions<2>>("helAllocateMemory", "size flags &restrictions > *handle"));
	calls.add_syscall(kHelCallMemoryInfo,
			syscall_row<sys_memory_info, Handle<0, MemoryView, 0, resolve_view>>("helMemoryInfo",
					"*handle > size"));
	calls.add_syscall(kHelCallPointerPhysical,
			syscall_row<sys_pointer_physical,
					Handle<0, AddressSpace, kHelRightProvision, resolve_space_or_dma>, Address<1>>(
					"helPointerPhysical", "*space &pointer > physical"));
	calls.add_syscall(kHelCallLoadahead,
			syscall_row<sys_loadahead, PageAligned<1>, PageAligned<2>,
					Handle<0, MemoryView, kHelRightProvision, resolve_view>>("helLoadahead",
					"*handle offset length"));
	calls.add_syscall(kHelCallSubmitProtectMemory,
			syscall_row<sys_legacy_protect_memory, SpaceWord, Address<1, void *>,
					Word<2, std::size_t>, Word<3, std::uint32_t>, QueueWord<4>, Address<5>>(
					"helSubmitProtectMemory", "*space &pointer size flags *queue &context"));
	calls.add_syscall(kHelCallSubmitSynchronizeSpace,
			syscall_row<sys_legacy_synchronize_space, SpaceWord, Address<1, void *>,
					Word<2, std::size_t>, QueueWord<3>, Address<4>>("helSubmitSynchronizeSpace",
					"*space &pointer size *queue &context"));
	calls.add_syscall(kHelCallSubmitReadMemory,
			syscall_row<sys_legacy_read_memory, ViewWord, Address<1>, Word<2, std::size_t>,
					Address<3, void *>, QueueWord<4>, Address<5>>("helSubmitReadMemory",
					"*handle &address length &buffer *queue &context"));
	calls.add_syscall(kHelCallSubmitWriteMemory,
			syscall_row<sys_legacy_write_memory, ViewWord, Address<1>, Word<2, std::size_t>,
					Address<3, const void *>, QueueWord<4>, Address<5>>("helSubmitWriteMemory",
					"*handle &address length &buffer *queue &context"));
	calls.add_syscall(kHelCallSubmitManageMemory,
			syscall_row<sys_legacy_manage_memory, ViewWord, QueueWord<1>, Address<2>>(
					"helSubmitManageMemory", "*handle *queue &context"));
	calls.add_syscall(kHelCallSubmitLockMemoryView,
			syscall_row<sys_legacy_lock_memory_view, ViewWord, Word<1, std::uintptr_t>,
					Word<2, std::size_t>, QueueWord<3>, Address<4>>("helSubmitLockMemoryView",
					"*handle offset size *queue &context"));
	calls.add_syscall(kHelCallCopyOnWrite,
			syscall_row<copy_on_write, Decoded<decode_copy_on_write>>("helCopyOnWrite",
					"*memory offset size > *handle"));
	calls.add_syscall(kHelCallCreateIndirectMemory,
			syscall_row<create_indirect_memory, Word<0, std::size_t>>("helCreateIndirectMemory",
					"numSlots > *handle"));
	calls.add_syscall(kHelCallAlterMemoryIndirection,
			syscall_row<alter_memory_indirection, Decoded<decode_indirection>>(
					"helAlterMemoryIndirection",
					"*indirectHandle slotIndex *memoryHandle offset size"));
	// The window and flags before the handle, in thor's order.
	calls.add_syscall(kHelCallCreateSliceView,
			syscall_row<sys_create_slice_view, PageAligned<1>, PageAligned<2>,
					Flags<3, kHelSliceCacheWriteCombine>,
					Handle<0, MemoryView, kHelRightAssign, resolve_view>>("helCreateSliceView",
					"*memory offset size flags > *handle"));
	calls.add_syscall(kHelCallCreateManagedMemory,
			syscall_row<attach_managed_memory, Word<0, std::size_t>, Word<1, std::uint32_t>>(
					"helCreateManagedMemory", "size flags > *backingHandle *frontalHandle"));
	// thor's order: alignment, then the handle, then the type.
	calls.add_syscall(kHelCallUpdateMemory,
			syscall_row<sys_update_memory, PageAligned<2>, PageAligned<3>,
					Handle<0, MemoryView, kHelRightManage, resolve_view>, ManageType<1>>(
					"helUpdateMemory", "*handle type offset length"));
	calls.add_syscall(kHelCallCreateSwapSpace,
			syscall_row<attach_swap_space, Word<0, std::uint32_t>>("helCreateSwapSpace",
					"flags > *backingHandle *swapHandle"));
	calls.add_syscall(kHelCallAllocateSwappableMemory,
			syscall_row<sys_allocate_swappable_memory, Flags<2, 0>, SwappableSize<1>,
					Handle<0, SwapSpace, kHelRightAssign>>("helAllocateSwappableMemory",
					"*swapHandle size flags > *handle"));
	calls.add_syscall(kHelCallSetSwapBudget,
			syscall_row<sys_set_swap_budget, Handle<0, SwapSpace, kHelRightManage>,
					Word<1, std::size_t>>("helSetSwapBudget", "*swapHandle numPages"));
	calls.add_sq_opcode(kHelSubmitProtectMemory,
			sq_row<sq_protect_memory, resolve_space, &HelSqProtectMemory::spaceHandle,
					kHelRightGrant>("ProtectMemory", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitSynchronizeSpace,
			sq_row<sq_synchronize_space, resolve_space, &HelSqSynchronizeSpace::spaceHandle,
					kHelRightProvision>("SynchronizeSpace", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitReadMemory,
			sq_row<sq_read_memory>("ReadMemory", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitWriteMemory,
			sq_row<sq_write_memory>("WriteMemory", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitResizeMemory,
			sq_row<sq_resize_memory, resolve_view, &HelSqResizeMemory::handle, kHelRightManage>(
					"ResizeMemory", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitForkMemory,
			sq_row<sq_fork_memory, resolve_view, &HelSqForkMemory::handle, kHelRightRead>(
					"ForkMemory", sizeof(HelHandleResult)));
	calls.add_sq_opcode(kHelSubmitManageMemory,
			sq_row<sq_manage_memory, resolve_view, &HelSqManageMemory::handle, kHelRightManage>(
					"ManageMemory", sizeof(HelManageResult)));
	calls.add_sq_opcode(kHelSubmitLockMemoryView,
			sq_row<sq_lock_memory_view, resolve_view, &HelSqLockMemoryView::handle, kHelRightPin>(
					"LockMemoryView", sizeof(HelHandleResult)));
	calls.add_sq_opcode(kHelSubmitWritebackFence,
			sq_row<sq_writeback_fence, resolve_view, &HelSqWritebackFence::handle, kHelRightFence>(
					"WritebackFence", sizeof(HelSimpleResult)));
	calls.add_sq_opcode(kHelSubmitInvalidateMemory,
			sq_row<sq_invalidate_memory, resolve_view, &HelSqInvalidateMemory::handle,
					kHelRightManage>("InvalidateMemory", sizeof(HelSimpleResult)));
}

} // namespace helsim::kernel
