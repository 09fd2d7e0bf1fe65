// The device syscalls' rows: their decode steps here, their effects in the objects' files.
#include "kernel/devices/device_syscalls.hpp"

#include <vector>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/devices/device_registry.hpp"
#include "kernel/devices/dma_space.hpp"
#include "kernel/devices/hardware_memory.hpp"
#include "kernel/devices/io_space.hpp"

namespace helsim::kernel {
namespace {

// helAccessPhysical(accessToken, physical, size, cachingMode), after the token (without it a
// caller learns nothing about the machine's memory): a non-empty, page-aligned range and a
// known caching mode (kHelErrIllegalArgs). Every range is allowed, RAM that belongs to others
// included (as thor allows any range to the token's holder), as long as the machine has memory
// there (kHelErrOutOfBounds).
HelError decode_physical(Thread &self, const HelWord *args, PhysicalRange &out) {
	out = {arg<std::uint64_t>(args, 1), arg<std::size_t>(args, 2), arg<std::uint32_t>(args, 3)};
	if (!out.size || !page_aligned(out.base) || !page_aligned(out.size))
		return kHelErrIllegalArgs;
	if (out.caching > kHelCachingMmioNonPosted)
		return kHelErrIllegalArgs;
	std::size_t memory = self.kernel().host().physical_memory().size();
	if (out.base > memory || out.size > memory - out.base)
		return kHelErrOutOfBounds;
	return kHelErrNone;
}

HelError sys_access_physical(Thread &self, const HardwareAccess &, const PhysicalRange &range,
		HelWord *outs) {
	return access_physical(self, range, outs);
}

HelError sys_create_dma_space(Thread &self, std::uint32_t, HelWord *outs) {
	return create_dma_space(self, outs);
}

// helAccessIo(accessToken, portArray, numPorts): the count decides how much is read; every
// port below 65536 (kHelErrIllegalArgs).
HelError decode_ports(Thread &self, const HelWord *args, std::vector<std::uint16_t> &out) {
	auto count = arg<std::size_t>(args, 2);
	if (count > kMaxPorts)
		return kHelErrIllegalArgs;
	std::vector<std::uintptr_t> words(count);
	if (count)
		if (HelError e = copy_from_user(self, words.data(), arg<const void *>(args, 1),
					count * sizeof(std::uintptr_t));
				e != kHelErrNone)
			return e;
	out.reserve(count);
	for (std::uintptr_t port : words) {
		if (port > 0xffff)
			return kHelErrIllegalArgs; // x86 has 65536 ports
		out.push_back(static_cast<std::uint16_t>(port));
	}
	return kHelErrNone;
}

HelError sys_access_io(Thread &self, const HardwareAccess &, std::vector<std::uint16_t> &ports,
		HelWord *outs) {
	return access_io(self, std::move(ports), outs);
}

HelError sys_enable_io(Thread &self, Lookup<IoSpace> &io) {
	enable_io(self, *io.object);
	return kHelErrNone;
}

// Port (word 0) and width (word 1) of helsimIoRead and helsimIoWrite (check_port).
struct PortAccess {
	std::uint16_t port = 0;
	unsigned width = 0;
};

struct Port {
	using Value = PortAccess;
	static constexpr ParamInfo info{ParamKind::word, 0, 1};
	static HelError decode(Thread &self, const HelWord *args, Value &out) {
		auto port = arg<std::uint64_t>(args, 0);
		auto width = arg<unsigned>(args, 1);
		if (HelError e = check_port(self, port, width); e != kHelErrNone)
			return e;
		out = {static_cast<std::uint16_t>(port), width};
		return kHelErrNone;
	}
};

HelError sys_io_read(Thread &self, const PortAccess &access, HelWord *outs) {
	outs[0] = io_read(self, access.port, access.width);
	return kHelErrNone;
}

HelError sys_io_write(Thread &self, const PortAccess &access, std::uint64_t value) {
	io_write(self, access.port, access.width, static_cast<std::uint32_t>(value));
	return kHelErrNone;
}

} // namespace

void register_device_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallAccessPhysical,
			syscall_row<sys_access_physical, HardwareToken<0>, Decoded<decode_physical>>(
					"helAccessPhysical", "*accessToken physical size cachingMode > *handle"));
	calls.add_syscall(kHelCallCreateDmaSpace,
			syscall_row<sys_create_dma_space, Flags<0, 0>>("helCreateDmaSpace", "flags > *handle"));
	calls.add_syscall(kHelCallAccessIo,
			syscall_row<sys_access_io, HardwareToken<0>, Decoded<decode_ports>>("helAccessIo",
					"*accessToken &portArray numPorts > *handle"));
	// thor's right for helEnableIo is not documented, so any IoSpace handle does
	// (docs/reference/helAccessIo.md).
	calls.add_syscall(kHelCallEnableIo,
			syscall_row<sys_enable_io, Handle<0, IoSpace, 0>>("helEnableIo", "*handle"));
	calls.add_syscall(kHelsimCallIoRead,
			syscall_row<sys_io_read, Port>("helsimIoRead", "port width > value"));
	calls.add_syscall(kHelsimCallIoWrite,
			syscall_row<sys_io_write, Port, Word<2, std::uint64_t>>("helsimIoWrite",
					"port width value"));
	calls.add_syscall(kHelsimCallMmioRead,
			syscall_row<mmio_read, Address<0>, Word<1, unsigned>>("helsimMmioRead",
					"&address width > value"));
	calls.add_syscall(kHelsimCallMmioWrite,
			syscall_row<mmio_write, Address<0>, Word<1, unsigned>, Word<2, std::uint64_t>>(
					"helsimMmioWrite", "&address width value"));
	calls.add_sq_opcode(kHelSubmitPopulateSpace,
			sq_row<sq_populate_space, resolve_object<DmaSpace>, &HelSqPopulateSpace::handle,
					kHelRightProvision>("PopulateSpace", sizeof(HelSimpleResult)));
}

} // namespace helsim::kernel
