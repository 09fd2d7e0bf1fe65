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
namespace {

// helAccessIrq(accessToken, mode, controller, index): a pin of the interrupt controller.
// The token is checked as for helAccessPhysical and helAccessIo (check_hardware_token). By GSI:
// controller 0 and a GSI below kGsiCount (else kHelErrIllegalArgs, kHelErrOutOfBounds). By
// device-tree phandle: the simulated machine has no device tree, kHelErrUnsupportedOperation.
HelError decode_irq_line(Thread &self, const HelWord *args, IrqLine *&out) {
	auto mode = arg<std::uint32_t>(args, 1);
	auto controller = arg<std::uint64_t>(args, 2);
	if (mode == kHelAccessIrqByPhandle)
		return kHelErrUnsupportedOperation;
	if (mode != kHelAccessIrqByGsi || controller != 0)
		return kHelErrIllegalArgs;
	out = self.kernel().irqs().line(arg<std::uint64_t>(args, 3));
	return out ? kHelErrNone : kHelErrOutOfBounds;
}

HelError sys_access_irq(Thread &self, const HardwareAccess &, IrqLine *line, HelWord *outs) {
	return attach_new(self, make_object<IrqPin>(self.kernel(), *line), kIrqPinDefaultRights, outs);
}

// helHandleIrq(pin): a new IRQ object on the pin's line.
HelError sys_handle_irq(Thread &self, Lookup<IrqPin> &pin, HelWord *outs) {
	return attach_new(self, make_object<IrqObject>(self.kernel(), pin.object->line()),
			kIrqDefaultRights, outs);
}

HelError sys_configure_irq(Thread &, Lookup<IrqPin> &pin, std::uint32_t trigger,
		std::uint32_t polarity) {
	return pin.object->line().configure(trigger, polarity);
}

// helAcknowledgeIrq's flags: known bits, and exactly one of acknowledge, nack and kick
// (kHelErrIllegalArgs); checked before the handle, as in thor.
struct AckFlags {
	using Value = HelWord;
	static constexpr ParamInfo info{ParamKind::flags, 1};
	static HelError decode(Thread &, const HelWord *args, Value &out) {
		out = arg<HelWord>(args, 1);
		if (out & ~HelWord{kHelAckAcknowledge | kHelAckNack | kHelAckKick | kHelAckClear})
			return kHelErrIllegalArgs;
		auto mode = out & (kHelAckAcknowledge | kHelAckNack | kHelAckKick);
		if (mode != kHelAckAcknowledge && mode != kHelAckNack && mode != kHelAckKick)
			return kHelErrIllegalArgs;
		return kHelErrNone;
	}
};

HelError sys_acknowledge_irq(Thread &, HelWord flags, Lookup<IrqObject> &irq,
		std::uint64_t sequence) {
	IrqLine &line = irq.object->line();
	// The modes are values, not bits (kHelAckNack is kHelAckAcknowledge | kHelAckKick).
	auto mode = flags & (kHelAckAcknowledge | kHelAckNack | kHelAckKick);
	if (mode == kHelAckKick)
		return line.kick(*irq.object, flags & kHelAckClear);
	return line.answer(*irq.object, sequence, mode == kHelAckAcknowledge);
}

// A later call replaces the kernlet.
HelError sys_automate_irq(Thread &, HelWord, Lookup<IrqObject> &irq, Lookup<BoundKernlet> &bound) {
	irq.object->line().automate(*irq.object, std::move(bound.object));
	return kHelErrNone;
}

// helBindKernlet(kernlet, data, numData): one HelKernletData per parameter of the kernlet's
// signature (another count: kHelErrIllegalArgs). An offset takes the word as a 32-bit value;
// a memory view and a bitset event take a handle of that kind (kHelErrNoDescriptor,
// kHelErrBadDescriptor; a bitset event needs Signal). The signature decides how the data is
// read.
struct Binding {
	Ref<KernletObject> kernlet;
	std::vector<KernletBinding> bindings;
};

HelError decode_binding(Thread &self, const HelWord *args, Binding &out) {
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
	out.bindings.resize(count);
	for (std::size_t i = 0; i < count; ++i) {
		KernletBinding &b = out.bindings[i];
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
	out.kernlet = std::move(kernlet.object);
	return kHelErrNone;
}

HelError sys_bind_kernlet(Thread &self, Binding &binding, HelWord *outs) {
	return attach_new(self,
			make_object<BoundKernlet>(self.kernel(), std::move(binding.kernlet),
					std::move(binding.bindings)),
			kBoundKernletDefaultRights, outs);
}

} // namespace

void register_irq_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallAccessIrq,
			syscall_row<sys_access_irq, HardwareToken<0>, Decoded<decode_irq_line>>("helAccessIrq",
					"*accessToken mode controller index > *handle"));
	calls.add_syscall(kHelCallHandleIrq,
			syscall_row<sys_handle_irq, Handle<0, IrqPin, kHelRightAssign>>("helHandleIrq",
					"*pinHandle > *handle"));
	calls.add_syscall(kHelCallConfigureIrq,
			syscall_row<sys_configure_irq, Handle<0, IrqPin, kHelRightManage>,
					Word<1, std::uint32_t>, Word<2, std::uint32_t>>("helConfigureIrq",
					"*pinHandle trigger polarity"));
	calls.add_syscall(kHelCallAcknowledgeIrq,
			syscall_row<sys_acknowledge_irq, AckFlags, Handle<0, IrqObject, kHelRightSignal>,
					Word<2, std::uint64_t>>("helAcknowledgeIrq", "*handle flags sequence"));
	// Flags must be 0; the IRQ object needs Wait and Signal, the bound kernlet Assign.
	calls.add_syscall(kHelCallAutomateIrq,
			syscall_row<sys_automate_irq, Flags<1, 0, HelWord>,
					Handle<0, IrqObject, kHelRightWait | kHelRightSignal>,
					Handle<2, BoundKernlet, kHelRightAssign>>("helAutomateIrq",
					"*handle flags *kernlet"));
	calls.add_syscall(kHelCallBindKernlet,
			syscall_row<sys_bind_kernlet, Decoded<decode_binding>>("helBindKernlet",
					"*handle &data numData > *boundHandle"));
}

} // namespace helsim::kernel
