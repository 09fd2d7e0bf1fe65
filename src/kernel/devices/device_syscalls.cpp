#include "kernel/devices/device_syscalls.hpp"

#include "kernel/core/syscall_args.hpp"

#include "kernel/devices/device_registry.hpp"
#include "kernel/devices/dma_space.hpp"
#include "kernel/devices/hardware_memory.hpp"
#include "kernel/devices/io_space.hpp"

namespace helsim::kernel {

void register_device_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallAccessPhysical,
			{"helAccessPhysical", "*accessToken physical size cachingMode > *handle",
					sys_access_physical});
	calls.add_syscall(kHelCallCreateDmaSpace,
			{"helCreateDmaSpace", "flags > *handle", sys_create_dma_space});
	calls.add_syscall(kHelCallAccessIo,
			{"helAccessIo", "*accessToken &portArray numPorts > *handle", sys_access_io});
	calls.add_syscall(kHelCallEnableIo, {"helEnableIo", "*handle", sys_enable_io});
	calls.add_syscall(kHelsimCallIoRead, {"helsimIoRead", "port width > value", sys_io_read});
	calls.add_syscall(kHelsimCallIoWrite, {"helsimIoWrite", "port width value", sys_io_write});
	calls.add_syscall(kHelsimCallMmioRead,
			{"helsimMmioRead", "&address width > value", sys_mmio_read});
	calls.add_syscall(kHelsimCallMmioWrite,
			{"helsimMmioWrite", "&address width value", sys_mmio_write});
	calls.add_sq_opcode(kHelSubmitPopulateSpace,
			sq_row<sq_populate_space, resolve_object<DmaSpace>, &HelSqPopulateSpace::handle,
					kHelRightProvision>("PopulateSpace", sizeof(HelSimpleResult)));
}

} // namespace helsim::kernel
