#include "kernel/devices/event_syscalls.hpp"

#include "kernel/core/syscall_args.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/devices/event.hpp"

namespace helsim::kernel {

HelError sys_create_oneshot_event(Thread &self, const HelWord *, HelWord *outs) {
	return attach_new(self, make_object<OneshotEvent>(self.kernel()), kEventDefaultRights, outs);
}

HelError sys_create_bitset_event(Thread &self, const HelWord *, HelWord *outs) {
	return attach_new(self, make_object<BitsetEvent>(self.kernel()), kEventDefaultRights, outs);
}

// helRaiseEvent(handle): a oneshot event, needing Signal (thor). thor raises a bitset event
// only from a kernlet (__trigger_bitset) and answers helRaiseEvent on one with
// kHelErrBadDescriptor; helsim takes the bits from argument word 1 instead
// (helsimRaiseBitsetEvent), so a Managarm caller, whose wrapper passes 0 there, still gets
// kHelErrBadDescriptor.
HelError sys_raise_event(Thread &self, const HelWord *args, HelWord *) {
	auto bits = arg<HelWord>(args, 1);
	Resolved r;
	if (HelError e = self.universe().lookup(arg<HelHandle>(args, 0), r); e != kHelErrNone)
		return e;
	switch (r.object->kind()) {
	case ObjectKind::oneshot_event:
		if (!(r.rights & kHelRightSignal))
			return kHelErrBadRights;
		if (bits)
			return kHelErrIllegalArgs; // bits mean nothing to a oneshot event
		return static_cast<OneshotEvent *>(r.object.get())->raise();
	case ObjectKind::bitset_event:
		if (!bits)
			return kHelErrBadDescriptor;
		if (!(r.rights & kHelRightSignal))
			return kHelErrBadRights;
		if (bits > 0xFFFFFFFFu)
			return kHelErrIllegalArgs; // 32 bits only
		static_cast<BitsetEvent *>(r.object.get())->raise(static_cast<std::uint32_t>(bits));
		return kHelErrNone;
	default: return kHelErrBadDescriptor;
	}
}

// kHelSubmitAwaitEvent: any awaitable object (Object::awaitable()), needing Wait.
HelError sq_await_event(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqAwaitEvent &request) {
	Resolved r;
	if (HelError e = self.universe().lookup(request.handle, r); e != kHelErrNone)
		return e;
	Awaitable *awaitable = r.object->awaitable();
	if (!awaitable)
		return kHelErrBadDescriptor;
	if (!(r.rights & kHelRightWait))
		return kHelErrBadRights;
	awaitable->submit_await(self, queue, request.sequence, request.cancellationTag, context);
	return kHelErrNone;
}

// The 2022 helSubmitAwaitEvent(handle, sequence, queue, context): the SQ operation without a
// cancellation tag (the old call had none).
HelError sys_legacy_await_event(Thread &self, const HelWord *args, HelWord *) {
	HelSqAwaitEvent request{arg<HelHandle>(args, 0), arg<std::uint64_t>(args, 1), 0};
	return submit_legacy(self, kHelSubmitAwaitEvent, arg<HelHandle>(args, 2),
			arg<std::uintptr_t>(args, 3), request);
}

void register_event_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateOneshotEvent,
			{"helCreateOneshotEvent", "> *handle", sys_create_oneshot_event});
	calls.add_syscall(kHelCallCreateBitsetEvent,
			{"helCreateBitsetEvent", "> *handle", sys_create_bitset_event});
	calls.add_syscall(kHelCallRaiseEvent, {"helRaiseEvent", "*handle bits", sys_raise_event});
	calls.add_syscall(kHelCallSubmitAwaitEvent,
			{"helSubmitAwaitEvent", "*handle sequence *queue &context", sys_legacy_await_event});
	calls.add_sq_opcode(kHelSubmitAwaitEvent,
			sq_row<sq_await_event>("AwaitEvent", sizeof(HelEventResult)));
}

} // namespace helsim::kernel
