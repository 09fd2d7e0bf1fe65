#include "thread_syscalls.hpp"

#include "register_image.hpp"
#include "syscall_args.hpp"
#include "syscalls.hpp"
#include "thread.hpp"
#include "universe.hpp"
#include "usercopy.hpp"

namespace helsim::kernel {

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
HelError sq_observe(Thread &self, IpcQueue &queue, std::uintptr_t context, const std::byte *payload,
		std::size_t length) {
	HelSqObserve request;
	if (!read_payload(request, payload, length))
		return kHelErrBufferTooSmall;
	auto thread = self.universe().resolve<Thread>(request.handle, kHelRightWait);
	if (!thread)
		return thread.error;
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

} // namespace helsim::kernel
