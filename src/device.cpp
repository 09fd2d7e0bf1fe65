// Simulated devices: include/helsim/device.hpp. The kernel's side is kernel/device_registry.*;
// interrupts (raise_irq, set_irq_level) are implemented in device_irq.cpp.
#include <helsim/device.hpp>

#include <cstring>
#include <stdexcept>

#include <fmt/core.h>

#include <helsim/machine.hpp>

#include "device_binding.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/devices/device_registry.hpp"

namespace helsim {

namespace {
const DeviceAddress kUnplugged{};
} // namespace

Device::Device() = default;
Device::~Device() = default;

const DeviceAddress &Device::address() const { return binding_ ? binding_->address : kUnplugged; }

std::uint64_t Device::mmio_read(std::uint64_t offset, unsigned width) {
	std::byte *file = registers();
	if (!file || offset > address().mmio_size || width > address().mmio_size - offset)
		return ~std::uint64_t{0};
	std::uint64_t value = 0;
	std::memcpy(&value, file + offset, width); // little-endian, as x86
	return value;
}

void Device::mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) {
	std::byte *file = registers();
	if (!file || offset > address().mmio_size || width > address().mmio_size - offset)
		return;
	std::memcpy(file + offset, &value, width);
}

std::uint32_t Device::io_read(std::uint16_t, unsigned width) {
	return width >= 4 ? ~std::uint32_t{0} : (std::uint32_t{1} << (8 * width)) - 1;
}

void Device::io_write(std::uint16_t, unsigned, std::uint32_t) {}

void Device::irq_acknowledged(unsigned) {}

std::byte *Device::registers() const { return binding_ ? binding_->registers : nullptr; }

namespace {
// [physical, physical + size) in the kernel's direct map, or nullptr if the device is not
// plugged (any more) or the range leaves the machine's physical memory.
std::byte *dma_range(const detail::DeviceBinding *binding, std::uint64_t physical,
		std::size_t size) {
	if (!binding || !binding->plugged.load(std::memory_order_acquire))
		return nullptr;
	sim::PhysicalMemory &memory = binding->kernel.host().physical_memory();
	if (physical > memory.size() || size > memory.size() - physical)
		return nullptr;
	return static_cast<std::byte *>(memory.direct(physical));
}
} // namespace

bool Device::dma_read(std::uint64_t physical, void *destination, std::size_t size) const {
	std::byte *range = dma_range(binding_.get(), physical, size);
	if (range && size)
		std::memcpy(destination, range, size);
	return range != nullptr;
}

bool Device::dma_write(std::uint64_t physical, const void *source, std::size_t size) const {
	std::byte *range = dma_range(binding_.get(), physical, size);
	if (range && size)
		std::memcpy(range, source, size);
	return range != nullptr;
}

void Device::after(std::uint64_t delay_ns, std::function<void()> callback) {
	if (!binding_)
		throw std::logic_error("helsim: Device::after called on a device that is not plugged");
	if (!binding_->plugged.load(std::memory_order_acquire))
		return; // the machine is going away: nothing fires any more
	// In interrupt context: no simulated thread runs the callback.
	binding_->kernel.host().call_after(delay_ns, std::move(callback));
}

std::uint64_t Device::now() const { return binding_ ? binding_->kernel.host().now() : 0; }

DeviceAddress plug(Machine &machine, std::shared_ptr<Device> device, DeviceConfig config) {
	if (!device)
		throw std::invalid_argument("helsim: plug: no device (nullptr)");
	if (device->binding_)
		throw std::invalid_argument(
				fmt::format("helsim: plug(\"{}\"): the device is already plugged", config.name));
	kernel::Kernel &kernel = machine.kernel_for_extensions();
	auto binding = std::unique_ptr<detail::DeviceBinding>{
			new detail::DeviceBinding{machine, kernel, {}, nullptr}};
	Device &target = *device;
	// Bound before it is registered: an accessor may reach the device as soon as it is.
	target.binding_ = std::move(binding);
	try {
		kernel.devices().add(std::move(device), *target.binding_, config,
				kernel.host().physical_memory());
		// The registry gave the lines GSIs below kGsiCount, so this cannot throw.
		detail::bind_device_irqs(*target.binding_, target);
	} catch (...) {
		target.binding_.reset();
		throw;
	}
	return target.binding_->address;
}

} // namespace helsim
