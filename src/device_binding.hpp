// What plug() connects a Device to: the machine's kernel and the device's placement. The
// kernel finds devices by MMIO window, port and GSI through its device registry; a device
// reaches the kernel through this binding.
#pragma once

#include <atomic>
#include <memory>

#include <helsim/device.hpp>

namespace helsim::kernel {
class Kernel;
}

namespace helsim::detail {

// GSIs the simulated interrupt controller has (helAccessIrq by GSI accepts [0, kGsiCount)).
// plug() assigns devices GSIs from kFirstDeviceGsi up, leaving the ISA range to tests that
// raise lines by hand.
inline constexpr unsigned kGsiCount = 256;
inline constexpr unsigned kFirstDeviceGsi = 16;

struct DeviceBinding {
	Machine &machine;
	kernel::Kernel &kernel;
	DeviceAddress address;
	std::byte *registers = nullptr; // the MMIO window in the kernel's direct map
	// Cleared when the machine's kernel is torn down: after() and DMA then do nothing.
	std::atomic<bool> plugged{true};
};

// Connects the device's interrupt lines to the interrupt controller (src/device_irq.cpp):
// plug() calls it once binding.address.gsis is filled, before the device can raise a line.
// Acknowledging line i's GSI then calls device.irq_acknowledged(i). Throws
// std::invalid_argument for a GSI >= kGsiCount.
void bind_device_irqs(DeviceBinding &binding, Device &device);

} // namespace helsim::detail
