// The Machine-facing half of extension.hpp and kernlet.hpp: registrations that name a
// Machine and reach its kernel. They sit beside machine.cpp, above the kernel, so that
// src/kernel needs no Machine (docs/architecture.md, "Layers").
#include <helsim/extension.hpp>
#include <helsim/kernlet.hpp>
#include <helsim/machine.hpp>

#include <stdexcept>

#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/devices/kernlet.hpp"
#include "kernel/ipc/stream_extension.hpp"

namespace helsim::ext {

void register_syscall(Machine &machine, std::uint32_t number, std::string name,
		SyscallHandler handler) {
	machine.kernel_for_extensions().calls().add_syscall(number,
			{std::move(name), nullptr, nullptr, handler});
}

void register_sq_opcode(Machine &machine, std::uint32_t opcode, std::string name,
		std::size_t result_size, SqHandler handler) {
	if (result_size < sizeof(HelSimpleResult))
		throw std::invalid_argument("helsim: register_sq_opcode(\"" + name +
				"\"): the result size is smaller than a HelSimpleResult");
	machine.kernel_for_extensions().calls().add_sq_opcode(opcode,
			{std::move(name), result_size, nullptr, handler});
}

void set_supercall_handler(Machine &machine, SupercallHandler handler) {
	machine.kernel_for_extensions().supercall_handler = std::move(handler);
}

ObjectKindId register_object_kind(Machine &machine, ObjectKindSpec spec) {
	return kernel::add_object_kind(machine.kernel_for_extensions(), std::move(spec));
}

void register_stream_action(Machine &machine, int type, const char *name, StreamResult result,
		StreamDecodeFunction decode) {
	kernel::add_stream_action(machine.kernel_for_extensions(), type, name, result, decode);
}

void register_stream_pair(Machine &machine, int first, int second, StreamPairFunction pair) {
	kernel::add_stream_pair(machine.kernel_for_extensions(), first, second, pair);
}

} // namespace helsim::ext

namespace helsim {

HelHandle register_kernlet(Machine &machine, std::string name,
		std::vector<KernletParameter> signature, KernletFn fn) {
	if (!fn)
		throw std::invalid_argument("helsim: register_kernlet(\"" + name + "\"): no function");
	kernel::Kernel &k = machine.kernel_for_extensions();
	// The root universe is the machine's first (Machine's constructor creates it before
	// anything else can create a universe; universe ids count from 1).
	kernel::Ref<kernel::Universe> root;
	for (auto &o : k.live_object_refs())
		if (o->kind() == kernel::ObjectKind::universe &&
				static_cast<kernel::Universe *>(o.get())->id() == 1)
			root = kernel::Ref<kernel::Universe>{static_cast<kernel::Universe *>(o.get())};
	if (!root)
		throw std::logic_error("helsim: register_kernlet: the machine has no root universe");
	auto kernlet = kernel::make_object<kernel::KernletObject>(k, std::move(name),
			std::move(signature), std::move(fn));
	HelHandle handle;
	if (HelError e = root->attach(std::move(kernlet), kernel::kKernletDefaultRights, handle);
			e != kHelErrNone)
		throw std::runtime_error("helsim: register_kernlet: the root universe is out of handles");
	return handle;
}

} // namespace helsim
