#include "kernel/devices/event_syscalls.hpp"

#include "kernel/core/syscall_args.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/devices/event.hpp"

namespace helsim::kernel {
namespace {

HelError sys_create_oneshot_event(Thread &self, HelWord *outs) {
	return attach_new(self, make_object<OneshotEvent>(self.kernel()), kEventDefaultRights, outs);
}

HelError sys_create_bitset_event(Thread &self, HelWord *outs) {
	return attach_new(self, make_object<BitsetEvent>(self.kernel()), kEventDefaultRights, outs);
}

// helRaiseEvent(handle): a oneshot event, needing Signal (thor). thor raises a bitset event
// only from a kernlet (__trigger_bitset) and answers helRaiseEvent on one with
// kHelErrBadDescriptor; helsim takes the bits from argument word 1 instead
// (helsimRaiseBitsetEvent), so a Managarm caller, whose wrapper passes 0 there, still gets
// kHelErrBadDescriptor. The event's kind decides how the bits are checked.
struct Raise {
	Ref<Object> event;
	std::uint32_t bits = 0;
};

HelError decode_raise(Thread &self, const HelWord *args, Raise &out) {
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
		break;
	case ObjectKind::bitset_event:
		if (!bits)
			return kHelErrBadDescriptor;
		if (!(r.rights & kHelRightSignal))
			return kHelErrBadRights;
		if (bits > 0xFFFFFFFFu)
			return kHelErrIllegalArgs; // 32 bits only
		break;
	default: return kHelErrBadDescriptor;
	}
	out = {std::move(r.object), static_cast<std::uint32_t>(bits)};
	return kHelErrNone;
}

HelError sys_raise_event(Thread &, Raise &raise) {
	if (raise.event->kind() == ObjectKind::oneshot_event)
		return static_cast<OneshotEvent *>(raise.event.get())->raise();
	static_cast<BitsetEvent *>(raise.event.get())->raise(raise.bits);
	return kHelErrNone;
}

} // namespace

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

namespace {

// The 2022 helSubmitAwaitEvent(handle, sequence, queue, context): the SQ operation without a
// cancellation tag (the old call had none); the submission resolves both handles.
HelError sys_legacy_await_event(Thread &self, HelHandle handle, std::uint64_t sequence,
		HelHandle queue, std::uintptr_t context) {
	return submit_legacy(self, kHelSubmitAwaitEvent, queue, context,
			HelSqAwaitEvent{handle, sequence, 0});
}

} // namespace

void register_event_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallCreateOneshotEvent,
			syscall_row<sys_create_oneshot_event>("helCreateOneshotEvent", "> *handle"));
	calls.add_syscall(kHelCallCreateBitsetEvent,
			syscall_row<sys_create_bitset_event>("helCreateBitsetEvent", "> *handle"));
	calls.add_syscall(kHelCallRaiseEvent,
			syscall_row<sys_raise_event, Decoded<decode_raise>>("helRaiseEvent", "*handle bits"));
	calls.add_syscall(kHelCallSubmitAwaitEvent,
			syscall_row<sys_legacy_await_event, HandleWord<0, ObjectKind::oneshot_event>,
					Word<1, std::uint64_t>, HandleWord<2, ObjectKind::queue>, Address<3>>(
					"helSubmitAwaitEvent", "*handle sequence *queue &context"));
	calls.add_sq_opcode(kHelSubmitAwaitEvent,
			sq_row<sq_await_event>("AwaitEvent", sizeof(HelEventResult)));
}

} // namespace helsim::kernel
