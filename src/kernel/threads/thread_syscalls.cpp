#include "kernel/threads/thread_syscalls.hpp"

#include "kernel/core/syscall_args.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/memory/memory_syscalls.hpp"
#include "kernel/memory/space.hpp"
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

namespace {

// ---------------------------------------------------------------- creation, scheduling, affinity

// helCreateThread's universe: kHelNullHandle is the caller's.
Lookup<Universe> resolve_universe_or_own(Thread &self, HelHandle handle, std::uint32_t rights) {
	if (handle == kHelNullHandle) {
		Lookup<Universe> result;
		result.object = self.universe_ref();
		return result;
	}
	return self.universe().resolve<Universe>(handle, rights);
}

using EntryFn = void (*)(std::uintptr_t);

// A thread's entry point: null is kHelErrIllegalArgs.
bool entry_given(EntryFn entry) { return entry != nullptr; }
template <int I>
using Entry = Checked<ParamKind::address, I, EntryFn, entry_given>;

HelError sys_create_thread(Thread &self, std::uint32_t flags, EntryFn ip,
		Lookup<Universe> &universe, Lookup<AddressSpace> &space, std::uintptr_t argument,
		HelWord *outs) {
	auto thread = make_object<Thread>(self.kernel(), sim::TaskKind::fiber, self.name() + "/thread",
			std::move(universe.object), std::move(space.object));
	// The thread starts at the image's ip with its sp as the argument: a supervisor may move
	// both while a stopped thread waits for its first helResume.
	Thread &created = *thread;
	created.set_entry([&created] {
		auto [entry, argument] = created.start_point();
		reinterpret_cast<EntryFn>(entry)(argument);
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

HelError sys_resume(Thread &, Lookup<Thread> &thread) { return thread.object->resume(); }

HelError sys_interrupt_thread(Thread &, Lookup<Thread> &thread) {
	return thread.object->interrupt();
}

HelError sys_kill_thread(Thread &, Lookup<Thread> &thread) { return thread.object->kill(); }

HelError sys_yield(Thread &self) {
	self.kernel().host().yield(self);
	return kHelErrNone;
}

HelError sys_set_priority(Thread &, Lookup<Thread> &thread, int priority) {
	thread.object->set_priority(priority);
	return kHelErrNone;
}

HelError sys_get_current_cpu(Thread &self, HelWord *outs) {
	outs[0] = self.cpu_index();
	return kHelErrNone;
}

// The bytes of an affinity mask of this machine: one bit per CPU.
std::size_t mask_bytes(Thread &self) { return (self.kernel().host().cpu_count() + 7) / 8; }

// helGetAffinity's size: smaller than the machine's mask is kHelErrBufferTooSmall. The value
// is the mask's size.
template <int I>
struct MaskRoom {
	using Value = std::size_t;
	static constexpr ParamInfo info{ParamKind::word, I};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		out = mask_bytes(self);
		return arg<std::size_t>(args, I) < out ? kHelErrBufferTooSmall : kHelErrNone;
	}
};

HelError sys_get_affinity(Thread &self, std::size_t needed, Lookup<Thread> &thread,
		const UserPtr<std::uint8_t> &mask_out, const UserPtr<std::size_t> &actual_size) {
	unsigned cpus = self.kernel().host().cpu_count();
	std::uint8_t mask[8] = {};
	std::uint64_t affinity = thread.object->affinity();
	for (unsigned i = 0; i < cpus; ++i)
		if (affinity & (std::uint64_t{1} << i))
			mask[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
	if (HelError e = mask_out.write(self, mask, needed); e != kHelErrNone)
		return e;
	if (actual_size)
		return actual_size.write(self, needed);
	return kHelErrNone;
}

// helSetAffinity's mask, read and checked before the handle is looked up (as thor): at most
// the machine's mask size (kHelErrOutOfBounds), no CPU the machine lacks and at least one
// (kHelErrIllegalArgs). The size decides how much is read.
HelError decode_affinity(Thread &self, const HelWord *args, std::uint64_t &out) {
	auto size = arg<std::size_t>(args, 2);
	unsigned cpus = self.kernel().host().cpu_count();
	std::size_t mask_size = mask_bytes(self);
	if (size > mask_size)
		return kHelErrOutOfBounds;
	std::uint8_t mask[8] = {};
	if (HelError e = copy_from_user(self, mask, arg<const void *>(args, 1), size); e != kHelErrNone)
		return e;
	if (cpus % 8 && (mask[mask_size - 1] >> (cpus % 8)))
		return kHelErrIllegalArgs; // a CPU this machine does not have
	out = 0;
	for (unsigned i = 0; i < cpus; ++i)
		if (mask[i / 8] & (1u << (i % 8)))
			out |= std::uint64_t{1} << i;
	return out ? kHelErrNone : kHelErrIllegalArgs;
}

HelError sys_set_affinity(Thread &self, std::uint64_t affinity, Lookup<Thread> &thread) {
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
HelError sys_write_fs_base(Thread &self, std::uintptr_t pointer) {
	self.set_fs_base(pointer);
	return kHelErrNone;
}

HelError sys_read_fs_base(Thread &self, HelWord *outs) {
	outs[0] = self.fs_base();
	return kHelErrNone;
}

HelError sys_write_gs_base(Thread &self, std::uintptr_t pointer) {
	self.set_gs_base(pointer);
	return kHelErrNone;
}

HelError sys_read_gs_base(Thread &self, HelWord *outs) {
	outs[0] = self.gs_base();
	return kHelErrNone;
}

// A register set's size in bytes (register_set_size; kHelErrIllegalArgs for a set there is
// none of). x86-64 sizes, as thor reports them (register_image.hpp). Debug and PageFault
// (load-only, no size to query) are refused as in thor; Virtualization is a vcpu's set, which
// only its size is asked of.
template <int I, bool Loadable, bool Virtualization = false>
struct RegisterSet {
	struct Value {
		int set = 0;
		std::size_t size = 0;
	};
	static constexpr ParamInfo info{ParamKind::word, I};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out.set = arg<int>(args, I);
		if (Virtualization && out.set == kHelRegsVirtualization) {
			out.size = sizeof(HelX86VirtualizationRegs);
			return kHelErrNone;
		}
		return register_set_size(out.set, Loadable, out.size);
	}
};

using InfoSet = RegisterSet<0, false, true>;
using LoadSet = RegisterSet<1, true>;
using StoreSet = RegisterSet<1, false>;

HelError sys_query_register_info(Thread &self, const InfoSet::Value &set,
		const UserPtr<HelRegisterInfo> &info) {
	HelRegisterInfo out{};
	out.setSize = static_cast<int>(set.size);
	return info.write(self, out);
}

// The largest set: Signal, 19 words.
constexpr std::size_t kMaxSetWords = 19;

// Thread handles only (thor's vcpu path has no simulated counterpart); Read to load.
HelError sys_load_registers(Thread &self, Lookup<Thread> &thread, const LoadSet::Value &set,
		const UserPtr<std::byte> &image) {
	HelWord words[kMaxSetWords];
	if (HelError e = thread.object->load_registers(set.set, words); e != kHelErrNone)
		return e;
	return image.write(self, reinterpret_cast<const std::byte *>(words), set.size);
}

// The register image helStoreRegisters stores, read from user memory before the thread is
// touched, so a bad pointer is kHelErrFault whatever the thread's state. The set (word 1)
// decides how much is read.
struct StoredImage {
	struct Value {
		int set = 0;
		HelWord words[kMaxSetWords];
	};
	static constexpr ParamInfo info{ParamKind::user_in, 2, 1};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		StoreSet::Value set;
		if (HelError e = StoreSet::decode(self, args, set); e != kHelErrNone)
			return e;
		out.set = set.set;
		return copy_from_user(self, out.words, arg<const void *>(args, 2), set.size);
	}
};

// Write to store.
HelError sys_store_registers(Thread &, Lookup<Thread> &thread, StoredImage::Value &image) {
	return thread.object->store_registers(image.set, image.words);
}

// userTime is the time the thread ran on a simulated CPU: host time in threads mode, virtual
// time in deterministic mode. No right is needed (thor: kHelRightNull).
HelError sys_query_thread_stats(Thread &self, Lookup<Thread> &thread,
		const UserPtr<HelThreadStats> &stats) {
	return stats.write(self,
			HelThreadStats{self.kernel().host().run_time_ns(*thread.object,
					thread.object.get() == &self)});
}

// The 2022 helSubmitObserve(thread, sequence, queue, context): the same operation as the SQ
// opcode, with today's semantics and 8-byte result; the sequence argument is ignored.
HelError sys_legacy_observe(Thread &self, HelHandle thread, HelHandle queue,
		std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitObserve, queue, context, HelSqObserve{thread});
}

} // namespace

// kHelSubmitObserve: the thread handle needs Wait (thor); kHelThisThread is no thread handle.
HelError sq_observe(Thread &self, IpcQueue &queue, std::uintptr_t context, const HelSqObserve &,
		Lookup<Thread> &thread) {
	thread.object->observe(self, queue, context);
	return kHelErrNone;
}

void register_thread_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateThread,
			syscall_row<sys_create_thread, Flags<5, kHelThreadStopped>, Entry<3>,
					Handle<0, Universe, kHelRightGrant | kHelRightTake | kHelRightAssign,
							resolve_universe_or_own>,
					Handle<1, AddressSpace, kHelRightRead | kHelRightWrite | kHelRightAssign,
							resolve_space>,
					Address<4>>("helCreateThread",
					"*universe *addressSpace abi &ip &sp flags > *handle"));
	calls.add_syscall(kHelCallResume,
			syscall_row<sys_resume, Handle<0, Thread, kHelRightManage>>("helResume", "*handle"));
	calls.add_syscall(kHelCallInterruptThread,
			syscall_row<sys_interrupt_thread, Handle<0, Thread, kHelRightSignal>>(
					"helInterruptThread", "*handle"));
	// thor resolves a plain handle (kHelThisThread is not one) and needs Manage.
	calls.add_syscall(kHelCallKillThread,
			syscall_row<sys_kill_thread, Handle<0, Thread, kHelRightManage>>("helKillThread",
					"*handle"));
	calls.add_syscall(kHelCallLoadRegisters,
			syscall_row<sys_load_registers, Handle<0, Thread, kHelRightRead>, LoadSet,
					UserOut<2, std::byte>>("helLoadRegisters", "*handle set &image"));
	calls.add_syscall(kHelCallStoreRegisters,
			syscall_row<sys_store_registers, Handle<0, Thread, kHelRightWrite>, StoredImage>(
					"helStoreRegisters", "*handle set &image"));
	calls.add_syscall(kHelCallSubmitObserve,
			syscall_row<sys_legacy_observe, HandleWord<0, ObjectKind::thread>,
					HandleWord<2, ObjectKind::queue>, Address<3>>("helSubmitObserve",
					"*handle sequence *queue &context"));
	calls.add_syscall(kHelCallYield, syscall_row<sys_yield>("helYield", ""));
	calls.add_syscall(kHelCallSetPriority,
			syscall_row<sys_set_priority, Handle<0, Thread, kHelRightManage, resolve_thread>,
					Word<1, int>>("helSetPriority", "*handle priority"));
	calls.add_syscall(kHelCallGetCurrentCpu,
			syscall_row<sys_get_current_cpu>("helGetCurrentCpu", "> cpu"));
	calls.add_syscall(kHelCallGetAffinity,
			syscall_row<sys_get_affinity, MaskRoom<2>,
					Handle<0, Thread, kHelRightRead, resolve_thread>, UserOut<1, std::uint8_t>,
					UserOut<3, std::size_t>>("helGetAffinity", "*handle &mask size &actualSize"));
	calls.add_syscall(kHelCallWriteFsBase,
			syscall_row<sys_write_fs_base, Address<0>>("helWriteFsBase", "&pointer"));
	calls.add_syscall(kHelCallReadFsBase,
			syscall_row<sys_read_fs_base>("helReadFsBase", "> &pointer"));
	calls.add_syscall(kHelCallWriteGsBase,
			syscall_row<sys_write_gs_base, Address<0>>("helWriteGsBase", "&pointer"));
	calls.add_syscall(kHelCallReadGsBase,
			syscall_row<sys_read_gs_base>("helReadGsBase", "> &pointer"));
	calls.add_syscall(kHelCallQueryRegisterInfo,
			syscall_row<sys_query_register_info, InfoSet, UserOut<1, HelRegisterInfo>>(
					"helQueryRegisterInfo", "set &info"));
	calls.add_syscall(kHelCallQueryThreadStats,
			syscall_row<sys_query_thread_stats, Handle<0, Thread, kHelRightNull, resolve_thread>,
					UserOut<1, HelThreadStats>>("helQueryThreadStats", "*handle &stats"));
	calls.add_syscall(kHelCallSetAffinity,
			syscall_row<sys_set_affinity, Decoded<decode_affinity>,
					Handle<0, Thread, kHelRightWrite, resolve_thread>>("helSetAffinity",
					"*handle &mask size"));
	calls.add_sq_opcode(kHelSubmitObserve,
			sq_row<sq_observe, resolve_object<Thread>, &HelSqObserve::handle, kHelRightWait>(
					"Observe", sizeof(HelObserveResult)));
}

} // namespace helsim::kernel
