#include "kernel/devices/irq_syscalls.hpp"

#include <memory>
#include <vector>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/core/token.hpp"
#include "kernel/devices/event.hpp"
#include "kernel/devices/irq.hpp"
#include "kernel/devices/kernlet.hpp"
#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

// helAccessIrq(accessToken, mode, controller, index): a pin of the interrupt controller.
// The token is checked as for helAccessPhysical and helAccessIo (check_hardware_token). By GSI:
// controller 0 and a GSI below kGsiCount (else kHelErrIllegalArgs, kHelErrOutOfBounds). By
// device-tree phandle: the simulated machine has no device tree, kHelErrUnsupportedOperation.
HelError sys_access_irq(Thread &self, const HelWord *args, HelWord *outs) {
	auto mode = arg<std::uint32_t>(args, 1);
	auto controller = arg<std::uint64_t>(args, 2);
	auto index = arg<std::uint64_t>(args, 3);
	if (HelError e = check_hardware_token(self, arg<HelHandle>(args, 0)); e != kHelErrNone)
		return e;
	if (mode == kHelAccessIrqByPhandle)
		return kHelErrUnsupportedOperation;
	if (mode != kHelAccessIrqByGsi || controller != 0)
		return kHelErrIllegalArgs;
	IrqLine *line = self.kernel().irqs().line(index);
	if (!line)
		return kHelErrOutOfBounds;
	return attach_new(self, make_object<IrqPin>(self.kernel(), *line), kIrqPinDefaultRights, outs);
}

// helHandleIrq(pin): a new IRQ object on the pin's line (the pin needs Assign).
HelError sys_handle_irq(Thread &self, const HelWord *args, HelWord *outs) {
	auto pin = self.universe().resolve<IrqPin>(arg<HelHandle>(args, 0), kHelRightAssign);
	if (!pin)
		return pin.error;
	return attach_new(self, make_object<IrqObject>(self.kernel(), pin.object->line()),
			kIrqDefaultRights, outs);
}

// helConfigureIrq(pin, trigger, polarity): the pin needs Manage.
HelError sys_configure_irq(Thread &self, const HelWord *args, HelWord *) {
	auto pin = self.universe().resolve<IrqPin>(arg<HelHandle>(args, 0), kHelRightManage);
	if (!pin)
		return pin.error;
	return pin.object->line().configure(arg<std::uint32_t>(args, 1), arg<std::uint32_t>(args, 2));
}

// helAcknowledgeIrq(irq, flags, sequence): flags are checked first, as in thor; the IRQ
// object needs Signal.
HelError sys_acknowledge_irq(Thread &self, const HelWord *args, HelWord *) {
	auto flags = arg<HelWord>(args, 1);
	auto sequence = arg<std::uint64_t>(args, 2);
	if (flags & ~HelWord{kHelAckAcknowledge | kHelAckNack | kHelAckKick | kHelAckClear})
		return kHelErrIllegalArgs;
	auto mode = flags & (kHelAckAcknowledge | kHelAckNack | kHelAckKick);
	if (mode != kHelAckAcknowledge && mode != kHelAckNack && mode != kHelAckKick)
		return kHelErrIllegalArgs;
	auto irq = self.universe().resolve<IrqObject>(arg<HelHandle>(args, 0), kHelRightSignal);
	if (!irq)
		return irq.error;
	IrqLine &line = irq.object->line();
	if (mode == kHelAckKick)
		return line.kick(*irq.object, flags & kHelAckClear);
	return line.answer(*irq.object, sequence, mode == kHelAckAcknowledge);
}

// helAutomateIrq(irq, flags, boundKernlet): flags must be 0; the IRQ object needs Wait and
// Signal, the bound kernlet Assign. A later call replaces the kernlet.
HelError sys_automate_irq(Thread &self, const HelWord *args, HelWord *) {
	if (arg<HelWord>(args, 1) != 0)
		return kHelErrIllegalArgs;
	auto irq = self.universe().resolve<IrqObject>(arg<HelHandle>(args, 0),
			kHelRightWait | kHelRightSignal);
	if (!irq)
		return irq.error;
	auto bound = self.universe().resolve<BoundKernlet>(arg<HelHandle>(args, 2), kHelRightAssign);
	if (!bound)
		return bound.error;
	irq.object->line().automate(*irq.object, std::move(bound.object));
	return kHelErrNone;
}

// helBindKernlet(kernlet, data, numData): one HelKernletData per parameter of the kernlet's
// signature (another count: kHelErrIllegalArgs). An offset takes the word as a 32-bit value;
// a memory view and a bitset event take a handle of that kind (kHelErrNoDescriptor,
// kHelErrBadDescriptor; a bitset event needs Signal).
HelError sys_bind_kernlet(Thread &self, const HelWord *args, HelWord *outs) {
	auto kernlet = self.universe().resolve<KernletObject>(arg<HelHandle>(args, 0), kHelRightAssign);
	if (!kernlet)
		return kernlet.error;
	auto count = arg<std::size_t>(args, 2);
	const auto &signature = kernlet.object->signature();
	if (count != signature.size())
		return kHelErrIllegalArgs;
	std::vector<HelKernletData> data(count);
	if (count)
		if (HelError e = copy_from_user(self, data.data(), arg<const void *>(args, 1),
					count * sizeof(HelKernletData));
				e != kHelErrNone)
			return e;
	std::vector<KernletBinding> bindings(count);
	for (std::size_t i = 0; i < count; ++i) {
		KernletBinding &b = bindings[i];
		b.type = signature[i];
		switch (signature[i]) {
		case KernletParameter::offset: b.offset = static_cast<std::uint32_t>(data[i].handle); break;
		case KernletParameter::memory_view: {
			auto view = self.universe().resolve<MemoryView>(data[i].handle, 0);
			if (!view)
				return view.error;
			b.view = std::move(view.object);
			break;
		}
		case KernletParameter::bitset_event: {
			auto event = self.universe().resolve<BitsetEvent>(data[i].handle, kHelRightSignal);
			if (!event)
				return event.error;
			b.event = std::move(event.object);
			break;
		}
		default: return kHelErrIllegalArgs;
		}
	}
	return attach_new(self,
			make_object<BoundKernlet>(self.kernel(), std::move(kernlet.object),
					std::move(bindings)),
			kBoundKernletDefaultRights, outs);
}

void register_irq_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallAccessIrq,
			{"helAccessIrq", "*accessToken mode controller index > *handle", sys_access_irq});
	calls.add_syscall(kHelCallHandleIrq, {"helHandleIrq", "*pinHandle > *handle", sys_handle_irq});
	calls.add_syscall(kHelCallConfigureIrq,
			{"helConfigureIrq", "*pinHandle trigger polarity", sys_configure_irq});
	calls.add_syscall(kHelCallAcknowledgeIrq,
			{"helAcknowledgeIrq", "*handle flags sequence", sys_acknowledge_irq});
	calls.add_syscall(kHelCallAutomateIrq,
			{"helAutomateIrq", "*handle flags *kernlet", sys_automate_irq});
	calls.add_syscall(kHelCallBindKernlet,
			{"helBindKernlet", "*handle &data numData > *boundHandle", sys_bind_kernlet});
}

} // namespace helsim::kernel
