#include "kernel/threads/thread_syscalls.hpp"

#include "kernel/core/syscall_args.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/register_image.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

// Resolves a thread handle, kHelThisThread meaning the caller.
Lookup<Thread> resolve_thread(Thread &self, HelHandle handle, std::uint32_t rights) {
	if (handle == kHelThisThread) {
		Lookup<Thread> result;
		result.object = Ref<Thread>{&self};
		result.rights = kThreadDefaultRights;
		return result;
	}
	return self.universe().resolve<Thread>(handle, rights);
}

// Resolves a universe handle, kHelThisUniverse meaning the caller's.
Lookup<Universe> resolve_universe(Thread &self, HelHandle handle, std::uint32_t rights) {
	if (handle == kHelThisUniverse) {
		Lookup<Universe> result;
		result.object = self.universe_ref();
		result.rights = kHelRightGrant | kHelRightTake | kHelRightAssign;
		return result;
	}
	return self.universe().resolve<Universe>(handle, rights);
}

// ---------------------------------------------------------------- creation, scheduling, affinity

HelError sys_create_thread(Thread &self, const HelWord *args, HelWord *outs) {
	auto ip = arg<void (*)(std::uintptr_t)>(args, 3);
	auto argument = arg<std::uintptr_t>(args, 4);
	auto flags = arg<std::uint32_t>(args, 5);
	if (flags & ~std::uint32_t{kHelThreadStopped})
		return kHelErrIllegalArgs;
	if (!ip)
		return kHelErrIllegalArgs;
	Ref<Universe> universe = self.universe_ref();
	if (HelHandle h = arg<HelHandle>(args, 0); h != kHelNullHandle) {
		auto r = self.universe().resolve<Universe>(h,
				kHelRightGrant | kHelRightTake | kHelRightAssign);
		if (!r)
			return r.error;
		universe = std::move(r.object);
	}
	Ref<AddressSpace> space = self.space_ref();
	if (HelHandle h = arg<HelHandle>(args, 1); h != kHelNullHandle) {
		auto r = self.universe().resolve<AddressSpace>(h,
				kHelRightRead | kHelRightWrite | kHelRightAssign);
		if (!r)
			return r.error;
		space = std::move(r.object);
	}
	auto thread = make_object<Thread>(self.kernel(), sim::TaskKind::fiber, self.name() + "/thread",
			std::move(universe), std::move(space));
	// The thread starts at the image's ip with its sp as the argument: a supervisor may move
	// both while a stopped thread waits for its first helResume.
	Thread &created = *thread;
	created.set_entry([&created] {
		auto [entry, argument] = created.start_point();
		reinterpret_cast<void (*)(std::uintptr_t)>(entry)(argument);
	});
	created.set_start_point(reinterpret_cast<HelWord>(ip), argument);
	if (HelError e = attach_new(self, std::move(thread), kThreadDefaultRights, outs);
			e != kHelErrNone)
		return e;
	// A stopped thread starts interrupted, as in thor: an observer sees kHelObserveInterrupt.
	if (flags & kHelThreadStopped)
		created.set_stopped_at_creation();
	else
		created.start();
	return kHelErrNone;
}

HelError sys_resume(Thread &self, const HelWord *args, HelWord *) {
	auto thread = self.universe().resolve<Thread>(arg<HelHandle>(args, 0), kHelRightManage);
	if (!thread)
		return thread.error;
	return thread.object->resume();
}

HelError sys_interrupt_thread(Thread &self, const HelWord *args, HelWord *) {
	auto thread = self.universe().resolve<Thread>(arg<HelHandle>(args, 0), kHelRightSignal);
	if (!thread)
		return thread.error;
	return thread.object->interrupt();
}

// thor resolves a plain handle (kHelThisThread is not one) and needs Manage.
HelError sys_kill_thread(Thread &self, const HelWord *args, HelWord *) {
	auto thread = self.universe().resolve<Thread>(arg<HelHandle>(args, 0), kHelRightManage);
	if (!thread)
		return thread.error;
	return thread.object->kill();
}

HelError sys_yield(Thread &self, const HelWord *, HelWord *) {
	self.kernel().host().yield(self);
	return kHelErrNone;
}

HelError sys_set_priority(Thread &self, const HelWord *args, HelWord *) {
	auto thread = resolve_thread(self, arg<HelHandle>(args, 0), kHelRightManage);
	if (!thread)
		return thread.error;
	thread.object->set_priority(arg<int>(args, 1));
	return kHelErrNone;
}

HelError sys_get_current_cpu(Thread &self, const HelWord *, HelWord *outs) {
	outs[0] = self.cpu_index();
	return kHelErrNone;
}

HelError sys_get_affinity(Thread &self, const HelWord *args, HelWord *) {
	auto size = arg<std::size_t>(args, 2);
	auto *actual_size = arg<std::size_t *>(args, 3);
	unsigned cpus = self.kernel().host().cpu_count();
	std::size_t needed = (cpus + 7) / 8;
	if (size < needed)
		return kHelErrBufferTooSmall;
	auto thread = resolve_thread(self, arg<HelHandle>(args, 0), kHelRightRead);
	if (!thread)
		return thread.error;
	std::uint8_t mask[8] = {};
	std::uint64_t affinity = thread.object->affinity();
	for (unsigned i = 0; i < cpus; ++i)
		if (affinity & (std::uint64_t{1} << i))
			mask[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
	if (HelError e = copy_to_user(self, arg<std::uint8_t *>(args, 1), mask, needed);
			e != kHelErrNone)
		return e;
	if (actual_size)
		if (HelError e = copy_to_user(self, actual_size, &needed, sizeof(needed)); e != kHelErrNone)
			return e;
	return kHelErrNone;
}

// As thor: the mask is read and checked before the handle is looked up.
HelError sys_set_affinity(Thread &self, const HelWord *args, HelWord *) {
	auto size = arg<std::size_t>(args, 2);
	unsigned cpus = self.kernel().host().cpu_count();
	std::size_t mask_size = (cpus + 7) / 8;
	if (size > mask_size)
		return kHelErrOutOfBounds;
	std::uint8_t mask[8] = {};
	if (HelError e = copy_from_user(self, mask, arg<const void *>(args, 1), size); e != kHelErrNone)
		return e;
	if (cpus % 8 && (mask[mask_size - 1] >> (cpus % 8)))
		return kHelErrIllegalArgs; // a CPU this machine does not have
	std::uint64_t affinity = 0;
	for (unsigned i = 0; i < cpus; ++i)
		if (mask[i / 8] & (1u << (i % 8)))
			affinity |= std::uint64_t{1} << i;
	if (!affinity)
		return kHelErrIllegalArgs;
	auto thread = resolve_thread(self, arg<HelHandle>(args, 0), kHelRightWrite);
	if (!thread)
		return thread.error;
	thread.object->set_affinity(affinity);
	// Leave a CPU we may no longer use at once; other threads move at their next switch.
	if (thread.object.get() == &self && self.is_fiber() &&
			!(affinity & (std::uint64_t{1} << self.cpu_index())))
		self.kernel().host().yield(self);
	return kHelErrNone;
}

// ---------------------------------------------------------------- fs and gs, registers, statistics

// The fs and gs words are the thread's, not the host's: a fiber moves between host threads,
// so user code that anchors per-thread state there finds it wherever it runs. As thor, the
// value is not checked (thor writes the MSR as given).
HelError sys_write_fs_base(Thread &self, const HelWord *args, HelWord *) {
	self.set_fs_base(arg<std::uintptr_t>(args, 0));
	return kHelErrNone;
}

HelError sys_read_fs_base(Thread &self, const HelWord *, HelWord *outs) {
	outs[0] = self.fs_base();
	return kHelErrNone;
}

HelError sys_write_gs_base(Thread &self, const HelWord *args, HelWord *) {
	self.set_gs_base(arg<std::uintptr_t>(args, 0));
	return kHelErrNone;
}

HelError sys_read_gs_base(Thread &self, const HelWord *, HelWord *outs) {
	outs[0] = self.gs_base();
	return kHelErrNone;
}

// x86-64 sizes in bytes, as thor reports them (register_image.hpp). Debug and PageFault
// (load-only, no size to query) are refused as in thor; Virtualization is a vcpu's set.
HelError sys_query_register_info(Thread &self, const HelWord *args, HelWord *) {
	HelRegisterInfo info{};
	auto set = arg<int>(args, 0);
	std::size_t size = sizeof(HelX86VirtualizationRegs);
	if (set != kHelRegsVirtualization)
		if (HelError e = register_set_size(set, false, size); e != kHelErrNone)
			return e;
	info.setSize = static_cast<int>(size);
	return copy_to_user(self, arg<HelRegisterInfo *>(args, 1), &info, sizeof(info));
}

namespace {
// The largest set: Signal, 19 words.
constexpr std::size_t kMaxSetWords = 19;
} // namespace

// Thread handles only (thor's vcpu path has no simulated counterpart); Read to load.
HelError sys_load_registers(Thread &self, const HelWord *args, HelWord *) {
	auto thread = self.universe().resolve<Thread>(arg<HelHandle>(args, 0), kHelRightRead);
	if (!thread)
		return thread.error;
	auto set = arg<int>(args, 1);
	std::size_t size;
	if (HelError e = register_set_size(set, true, size); e != kHelErrNone)
		return e;
	HelWord words[kMaxSetWords];
	if (HelError e = thread.object->load_registers(set, words); e != kHelErrNone)
		return e;
	return copy_to_user(self, arg<void *>(args, 2), words, size);
}

// Write to store. The image is read from user memory first, so a bad pointer is kHelErrFault
// whatever the thread's state.
HelError sys_store_registers(Thread &self, const HelWord *args, HelWord *) {
	auto thread = self.universe().resolve<Thread>(arg<HelHandle>(args, 0), kHelRightWrite);
	if (!thread)
		return thread.error;
	auto set = arg<int>(args, 1);
	std::size_t size;
	if (HelError e = register_set_size(set, false, size); e != kHelErrNone)
		return e;
	HelWord words[kMaxSetWords];
	if (HelError e = copy_from_user(self, words, arg<const void *>(args, 2), size);
			e != kHelErrNone)
		return e;
	return thread.object->store_registers(set, words);
}

// userTime is the time the thread ran on a simulated CPU: host time in threads mode, virtual
// time in deterministic mode. No right is needed (thor: kHelRightNull).
HelError sys_query_thread_stats(Thread &self, const HelWord *args, HelWord *) {
	Ref<Thread> thread{&self};
	if (HelHandle h = arg<HelHandle>(args, 0); h != kHelThisThread) {
		auto r = self.universe().resolve<Thread>(h, kHelRightNull);
		if (!r)
			return r.error;
		thread = std::move(r.object);
	}
	HelThreadStats stats{self.kernel().host().run_time_ns(*thread, thread.get() == &self)};
	return copy_to_user(self, arg<HelThreadStats *>(args, 1), &stats, sizeof(stats));
}

// kHelSubmitObserve: the thread handle needs Wait (thor); kHelThisThread is no thread handle.
HelError sq_observe(Thread &self, IpcQueue &queue, std::uintptr_t context, const HelSqObserve &,
		Lookup<Thread> &thread) {
	thread.object->observe(self, queue, context);
	return kHelErrNone;
}

// The 2022 helSubmitObserve(thread, sequence, queue, context): the same operation as the SQ
// opcode, with today's semantics and 8-byte result; the sequence argument is ignored.
HelError sys_legacy_observe(Thread &self, const HelWord *args, HelWord *) {
	HelSqObserve request{arg<HelHandle>(args, 0)};
	return submit_legacy(self, kHelSubmitObserve, arg<HelHandle>(args, 2),
			arg<std::uintptr_t>(args, 3), request);
}

void register_thread_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateThread,
			{"helCreateThread", "*universe *addressSpace abi &ip &sp flags > *handle",
					sys_create_thread});
	calls.add_syscall(kHelCallResume, {"helResume", "*handle", sys_resume});
	calls.add_syscall(kHelCallInterruptThread,
			{"helInterruptThread", "*handle", sys_interrupt_thread});
	calls.add_syscall(kHelCallKillThread, {"helKillThread", "*handle", sys_kill_thread});
	calls.add_syscall(kHelCallLoadRegisters,
			{"helLoadRegisters", "*handle set &image", sys_load_registers});
	calls.add_syscall(kHelCallStoreRegisters,
			{"helStoreRegisters", "*handle set &image", sys_store_registers});
	calls.add_syscall(kHelCallSubmitObserve,
			{"helSubmitObserve", "*handle sequence *queue &context", sys_legacy_observe});
	calls.add_syscall(kHelCallYield, {"helYield", "", sys_yield});
	calls.add_syscall(kHelCallSetPriority,
			{"helSetPriority", "*handle priority", sys_set_priority});
	calls.add_syscall(kHelCallGetCurrentCpu, {"helGetCurrentCpu", "> cpu", sys_get_current_cpu});
	calls.add_syscall(kHelCallGetAffinity,
			{"helGetAffinity", "*handle &mask size &actualSize", sys_get_affinity});
	calls.add_syscall(kHelCallWriteFsBase, {"helWriteFsBase", "&pointer", sys_write_fs_base});
	calls.add_syscall(kHelCallReadFsBase, {"helReadFsBase", "> &pointer", sys_read_fs_base});
	calls.add_syscall(kHelCallWriteGsBase, {"helWriteGsBase", "&pointer", sys_write_gs_base});
	calls.add_syscall(kHelCallReadGsBase, {"helReadGsBase", "> &pointer", sys_read_gs_base});
	calls.add_syscall(kHelCallQueryRegisterInfo,
			{"helQueryRegisterInfo", "set &info", sys_query_register_info});
	calls.add_syscall(kHelCallQueryThreadStats,
			{"helQueryThreadStats", "*handle &stats", sys_query_thread_stats});
	calls.add_syscall(kHelCallSetAffinity,
			{"helSetAffinity", "*handle &mask size", sys_set_affinity});
	calls.add_sq_opcode(kHelSubmitObserve,
			sq_row<sq_observe, resolve_object<Thread>, &HelSqObserve::handle, kHelRightWait>(
					"Observe", sizeof(HelObserveResult)));
}

} // namespace helsim::kernel
