// The kernel's device registry: which simulated device (include/helsim/device.hpp) answers at
// a physical address (its MMIO window) and at an I/O port, and which GSIs plug() gave it.
// plug() fills it; the accessors (helsimMmioRead/Write, helsimIoRead/Write) look devices up
// here (the interrupt lines keep their device themselves: detail::bind_device_irqs). Devices
// stay registered until the kernel is torn down.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <helsim/device.hpp>

#include "device_binding.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

class Thread;

class DeviceRegistry {
public:
	DeviceRegistry() = default;
	DeviceRegistry(const DeviceRegistry &) = delete;
	DeviceRegistry &operator=(const DeviceRegistry &) = delete;
	~DeviceRegistry();

	// plug(): places `device` as `config` asks — an MMIO window reserved from `memory` (the
	// highest free range), its ports, GSIs from detail::kFirstDeviceGsi up — and records
	// `binding`, which the registry marks unplugged at teardown. Throws as plug() documents;
	// on a throw nothing is reserved.
	DeviceAddress add(std::shared_ptr<Device> device, detail::DeviceBinding &binding,
			const DeviceConfig &config, sim::PhysicalMemory &memory);

	struct Window {
		std::shared_ptr<Device> device;
		std::uint64_t offset = 0; // of the address in the device's window
	};
	// The device whose MMIO window holds `physical`, if any.
	std::optional<Window> at_physical(sim::PhysicalAddr physical) const;
	// The device that owns `port`, or nullptr.
	std::shared_ptr<Device> at_port(std::uint16_t port) const;

	// Teardown: every binding is marked unplugged (after() and DMA then do nothing) and the
	// devices are let go.
	void unplug_all();

private:
	struct Entry {
		std::shared_ptr<Device> device;
		detail::DeviceBinding *binding;
		DeviceAddress address;
	};

	mutable std::mutex mutex_;
	std::vector<Entry> devices_;
	std::map<sim::PhysicalAddr, std::size_t> windows_; // window start -> index in devices_
	std::map<std::uint16_t, std::size_t> ports_;       // first port -> index in devices_
	unsigned next_gsi_ = detail::kFirstDeviceGsi;
};

// helsimMmioRead / helsimMmioWrite: `width` bytes at `address`, a device's window or plain
// memory (kHelErrFault where nothing is).
HelError mmio_read(Thread &self, std::uintptr_t address, unsigned width, HelWord *outs);
HelError mmio_write(Thread &self, std::uintptr_t address, unsigned width, std::uint64_t value);

} // namespace helsim::kernel
