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

HelError sys_allocate_memory(Thread &self, const HelWord *args, HelWord *outs) {
	HelAllocRestrictions restrictions{};
	if (auto *user = arg<const HelAllocRestrictions *>(args, 2))
		if (HelError e = copy_from_user(self, &restrictions, user, sizeof(restrictions));
				e != kHelErrNone)
			return e;
	Ref<AllocatedMemory> memory;
	if (HelError e = AllocatedMemory::create(self.kernel(), arg<std::size_t>(args, 0),
				arg<std::uint32_t>(args, 1), restrictions.addressBits, memory);
			e != kHelErrNone)
		return e;
	return attach_new(self, std::move(memory), kMemoryDefaultRights, outs);
}

HelError sys_create_space(Thread &self, const HelWord *, HelWord *outs) {
	Ref<AddressSpace> space = self.kernel().create_space();
	if (!space->valid())
		return kHelErrNoMemory;
	return attach_new(self, std::move(space), kSpaceDefaultRights, outs);
}

HelError sys_map_memory(Thread &self, const HelWord *args, HelWord *outs) {
	auto pointer = arg<std::uintptr_t>(args, 2);
	auto offset = arg<std::uintptr_t>(args, 3);
	auto size = arg<std::size_t>(args, 4);
	auto flags = arg<std::uint32_t>(args, 5);
	constexpr std::uint32_t kKnown = kProtMask | kHelMapDontRequireBacking | kHelMapFixed |
			kHelMapFixedNoReplace | kHelMapPreferBottom;
	if (flags & ~kKnown)
		return kHelErrIllegalArgs;
	bool fixed = flags & (kHelMapFixed | kHelMapFixedNoReplace);
	if ((flags & kHelMapFixed) && (flags & kHelMapFixedNoReplace))
		return kHelErrIllegalArgs;
	if (!size || !page_aligned(pointer) || !page_aligned(offset) || !page_aligned(size))
		return kHelErrIllegalArgs;
	if (fixed && !pointer)
		return kHelErrIllegalArgs;
	std::uint32_t rights = kHelRightAssign;
	if (flags & kHelMapProtRead)
		rights |= kHelRightRead;
	if (flags & kHelMapProtWrite)
		rights |= kHelRightWrite;
	if (flags & kHelMapProtExecute)
		rights |= kHelRightExecute;
	Mappable memory;
	if (HelError e = resolve_mappable(self, arg<HelHandle>(args, 0), rights, memory);
			e != kHelErrNone)
		return e;
	if (offset > memory.size || size > memory.size - offset)
		return kHelErrBufferTooSmall;
	auto space = resolve_space_or_dma(self, arg<HelHandle>(args, 1), kHelRightGrant);
	if (!space)
		return space.error;
	std::uintptr_t address;
	if (HelError e = space.object->map(std::move(memory.view), memory.base + offset, pointer, size,
				flags, address);
			e != kHelErrNone)
		return e;
	outs[0] = address;
	return kHelErrNone;
}

HelError sys_unmap_memory(Thread &self, const HelWord *args, HelWord *) {
	auto pointer = arg<std::uintptr_t>(args, 1);
	auto size = arg<std::size_t>(args, 2);
	if (!page_range(pointer, size))
		return kHelErrIllegalArgs;
	auto space = resolve_space_or_dma(self, arg<HelHandle>(args, 0), kHelRightGrant);
	if (!space)
		return space.error;
	return space.object->unmap(pointer, size);
}

HelError sys_memory_info(Thread &self, const HelWord *args, HelWord *outs) {
	auto view = resolve_view(self, arg<HelHandle>(args, 0), 0);
	if (!view)
		return view.error;
	outs[0] = view.object->size();
	return kHelErrNone;
}

HelError sys_pointer_physical(Thread &self, const HelWord *args, HelWord *outs) {
	auto space = resolve_space_or_dma(self, arg<HelHandle>(args, 0), kHelRightProvision);
	if (!space)
		return space.error;
	auto pointer = arg<std::uintptr_t>(args, 1);
	if (!space.object->in_window(pointer, 1))
		return kHelErrFault; // host memory has no simulated physical address
	sim::PhysicalAddr physical;
	if (HelError e = space.object->physical_of(pointer, physical); e != kHelErrNone)
		return e;
	outs[0] = physical;
	return kHelErrNone;
}

HelError sys_loadahead(Thread &self, const HelWord *args, HelWord *) {
	// Checked as thor checks it, then ignored (thor's body is commented out).
	if (!page_aligned(arg<std::uintptr_t>(args, 1)) || !page_aligned(arg<std::size_t>(args, 2)))
		return kHelErrIllegalArgs;
	auto view = resolve_view(self, arg<HelHandle>(args, 0), kHelRightProvision);
	return view ? kHelErrNone : view.error;
}

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

HelError sys_legacy_protect_memory(Thread &self, const HelWord *args, HelWord *) {
	HelSqProtectMemory request{arg<HelHandle>(args, 0), arg<void *>(args, 1),
			arg<std::size_t>(args, 2), arg<std::uint32_t>(args, 3)};
	return submit_legacy(self, kHelSubmitProtectMemory, arg<HelHandle>(args, 4),
			arg<std::uintptr_t>(args, 5), request);
}

HelError sys_legacy_synchronize_space(Thread &self, const HelWord *args, HelWord *) {
	HelSqSynchronizeSpace request{arg<HelHandle>(args, 0), arg<void *>(args, 1),
			arg<std::size_t>(args, 2)};
	return submit_legacy(self, kHelSubmitSynchronizeSpace, arg<HelHandle>(args, 3),
			arg<std::uintptr_t>(args, 4), request);
}

HelError sys_legacy_read_memory(Thread &self, const HelWord *args, HelWord *) {
	HelSqReadMemory request{arg<HelHandle>(args, 0), arg<std::uintptr_t>(args, 1),
			arg<std::size_t>(args, 2), arg<void *>(args, 3)};
	return submit_legacy(self, kHelSubmitReadMemory, arg<HelHandle>(args, 4),
			arg<std::uintptr_t>(args, 5), request);
}

HelError sys_legacy_write_memory(Thread &self, const HelWord *args, HelWord *) {
	HelSqWriteMemory request{arg<HelHandle>(args, 0), arg<std::uintptr_t>(args, 1),
			arg<std::size_t>(args, 2), arg<const void *>(args, 3)};
	return submit_legacy(self, kHelSubmitWriteMemory, arg<HelHandle>(args, 4),
			arg<std::uintptr_t>(args, 5), request);
}

HelError sys_legacy_manage_memory(Thread &self, const HelWord *args, HelWord *) {
	HelSqManageMemory request{arg<HelHandle>(args, 0)};
	return submit_legacy(self, kHelSubmitManageMemory, arg<HelHandle>(args, 1),
			arg<std::uintptr_t>(args, 2), request);
}

HelError sys_legacy_lock_memory_view(Thread &self, const HelWord *args, HelWord *) {
	HelSqLockMemoryView request{arg<HelHandle>(args, 0), arg<std::uintptr_t>(args, 1),
			arg<std::size_t>(args, 2)};
	return submit_legacy(self, kHelSubmitLockMemoryView, arg<HelHandle>(args, 3),
			arg<std::uintptr_t>(args, 4), request);
}

void register_memory_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateSpace, {"helCreateSpace", "> *handle", sys_create_space});
	calls.add_syscall(kHelCallMapMemory,
			{"helMapMemory", "*handle *space &pointer offset size flags > &actualPointer",
					sys_map_memory});
	calls.add_syscall(kHelCallUnmapMemory,
			{"helUnmapMemory", "*space &pointer size", sys_unmap_memory});
	calls.add_syscall(kHelCallAllocateMemory,
			{"helAllocateMemory", "size flags &restrictions > *handle", sys_allocate_memory});
	calls.add_syscall(kHelCallMemoryInfo, {"helMemoryInfo", "*handle > size", sys_memory_info});
	calls.add_syscall(kHelCallPointerPhysical,
			{"helPointerPhysical", "*space &pointer > physical", sys_pointer_physical});
	calls.add_syscall(kHelCallLoadahead, {"helLoadahead", "*handle offset length", sys_loadahead});
	calls.add_syscall(kHelCallSubmitProtectMemory,
			{"helSubmitProtectMemory", "*space &pointer size flags *queue &context",
					sys_legacy_protect_memory});
	calls.add_syscall(kHelCallSubmitSynchronizeSpace,
			{"helSubmitSynchronizeSpace", "*space &pointer size *queue &context",
					sys_legacy_synchronize_space});
	calls.add_syscall(kHelCallSubmitReadMemory,
			{"helSubmitReadMemory", "*handle &address length &buffer *queue &context",
					sys_legacy_read_memory});
	calls.add_syscall(kHelCallSubmitWriteMemory,
			{"helSubmitWriteMemory", "*handle &address length &buffer *queue &context",
					sys_legacy_write_memory});
	calls.add_syscall(kHelCallSubmitManageMemory,
			{"helSubmitManageMemory", "*handle *queue &context", sys_legacy_manage_memory});
	calls.add_syscall(kHelCallSubmitLockMemoryView,
			{"helSubmitLockMemoryView", "*handle offset size *queue &context",
					sys_legacy_lock_memory_view});
	calls.add_syscall(kHelCallCopyOnWrite,
			{"helCopyOnWrite", "*memory offset size > *handle", sys_copy_on_write});
	calls.add_syscall(kHelCallCreateIndirectMemory,
			{"helCreateIndirectMemory", "numSlots > *handle", sys_create_indirect_memory});
	calls.add_syscall(kHelCallAlterMemoryIndirection,
			{"helAlterMemoryIndirection", "*indirectHandle slotIndex *memoryHandle offset size",
					sys_alter_memory_indirection});
	calls.add_syscall(kHelCallCreateSliceView,
			{"helCreateSliceView", "*memory offset size flags > *handle", sys_create_slice_view});
	calls.add_syscall(kHelCallCreateManagedMemory,
			{"helCreateManagedMemory", "size flags > *backingHandle *frontalHandle",
					sys_create_managed_memory});
	calls.add_syscall(kHelCallUpdateMemory,
			{"helUpdateMemory", "*handle type offset length", sys_update_memory});
	calls.add_syscall(kHelCallCreateSwapSpace,
			{"helCreateSwapSpace", "flags > *backingHandle *swapHandle", sys_create_swap_space});
	calls.add_syscall(kHelCallAllocateSwappableMemory,
			{"helAllocateSwappableMemory", "*swapHandle size flags > *handle",
					sys_allocate_swappable_memory});
	calls.add_syscall(kHelCallSetSwapBudget,
			{"helSetSwapBudget", "*swapHandle numPages", sys_set_swap_budget});
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
