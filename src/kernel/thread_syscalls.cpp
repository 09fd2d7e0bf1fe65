#include "thread_syscalls.hpp"

#include "syscall_args.hpp"
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

// x86-64 sizes in bytes, as thor reports them. Simd is 0: a simulated thread runs host code
// whose vector registers the host saves at each fiber switch, so there is no image of them to
// load or store. Debug and PageFault (load-only, no size to query) are refused as in thor.
HelError sys_query_register_info(Thread &self, const HelWord *args, HelWord *) {
	HelRegisterInfo info{};
	switch (arg<int>(args, 0)) {
	case kHelRegsProgram: info.setSize = 2 * sizeof(std::uint64_t); break;
	case kHelRegsGeneral: info.setSize = kHelNumGprs * sizeof(std::uint64_t); break;
	case kHelRegsThread: info.setSize = 2 * sizeof(std::uint64_t); break;
	case kHelRegsVirtualization: info.setSize = sizeof(HelX86VirtualizationRegs); break;
	case kHelRegsSimd: info.setSize = 0; break;
	case kHelRegsSignal: info.setSize = 19 * sizeof(std::uint64_t); break;
	default: return kHelErrIllegalArgs;
	}
	return copy_to_user(self, arg<HelRegisterInfo *>(args, 1), &info, sizeof(info));
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

} // namespace helsim::kernel
