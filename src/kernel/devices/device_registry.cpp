// The device registry, and the MMIO accessors that reach devices through it.
#include "kernel/devices/device_registry.hpp"

#include <fmt/core.h>

#include <cstring>
#include <stdexcept>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

DeviceRegistry::~DeviceRegistry() { unplug_all(); }

DeviceAddress DeviceRegistry::add(std::shared_ptr<Device> device, detail::DeviceBinding &binding,
		const DeviceConfig &config, sim::PhysicalMemory &memory) {
	std::lock_guard lock{mutex_};
	DeviceAddress address;
	// 1. Check everything that can fail without taking anything.
	if (config.io_count && std::uint32_t{config.io_base} + config.io_count > 0x10000)
		throw std::invalid_argument(
				fmt::format("helsim: plug(\"{}\"): ports [{:#x}, {:#x}) run past port 0xffff",
						config.name, config.io_base,
						std::uint32_t{config.io_base} + config.io_count));
	if (config.io_count) {
		std::uint32_t begin = config.io_base, end = begin + config.io_count;
		for (const auto &[first, index] : ports_) {
			const DeviceAddress &other = devices_[index].address;
			if (begin < std::uint32_t{first} + other.io_count && first < end)
				throw std::invalid_argument(fmt::format(
						"helsim: plug(\"{}\"): ports [{:#x}, {:#x}) overlap those of another "
						"device, [{:#x}, {:#x})",
						config.name, begin, end, first, std::uint32_t{first} + other.io_count));
		}
	}
	if (config.irq_lines > detail::kGsiCount - next_gsi_)
		throw std::invalid_argument(
				fmt::format("helsim: plug(\"{}\"): {} interrupt lines asked for, {} GSIs left",
						config.name, config.irq_lines, detail::kGsiCount - next_gsi_));
	std::size_t window = (config.mmio_size + sim::kPageSize - 1) & ~(sim::kPageSize - 1);
	if (window < config.mmio_size)
		throw std::invalid_argument(
				fmt::format("helsim: plug(\"{}\"): mmio_size is too large", config.name));
	// 2. Take: the window last thing that can fail, so a failure leaves nothing taken.
	if (window) {
		auto base = memory.reserve(window);
		if (!base)
			throw std::runtime_error(fmt::format(
					"helsim: plug(\"{}\"): physical memory has no free {} bytes for the MMIO "
					"window (MachineConfig::physical_memory)",
					config.name, window));
		address.mmio_physical = *base;
		address.mmio_size = window;
		binding.registers = static_cast<std::byte *>(memory.direct(*base));
	}
	address.io_base = config.io_count ? config.io_base : 0;
	address.io_count = config.io_count;
	for (unsigned line = 0; line < config.irq_lines; ++line)
		address.gsis.push_back(next_gsi_++);
	binding.address = address; // before the device can be found
	std::size_t index = devices_.size();
	devices_.push_back({std::move(device), &binding, address});
	if (window)
		windows_.emplace(address.mmio_physical, index);
	if (config.io_count)
		ports_.emplace(config.io_base, index);
	return address;
}

std::optional<DeviceRegistry::Window> DeviceRegistry::at_physical(
		sim::PhysicalAddr physical) const {
	std::lock_guard lock{mutex_};
	auto it = windows_.upper_bound(physical);
	if (it == windows_.begin())
		return std::nullopt;
	--it;
	const Entry &entry = devices_[it->second];
	if (physical - it->first >= entry.address.mmio_size)
		return std::nullopt;
	return Window{entry.device, physical - it->first};
}

std::shared_ptr<Device> DeviceRegistry::at_port(std::uint16_t port) const {
	std::lock_guard lock{mutex_};
	auto it = ports_.upper_bound(port);
	if (it == ports_.begin())
		return nullptr;
	--it;
	const Entry &entry = devices_[it->second];
	if (port - it->first >= entry.address.io_count)
		return nullptr;
	return entry.device;
}

void DeviceRegistry::unplug_all() {
	std::vector<Entry> entries;
	{
		std::lock_guard lock{mutex_};
		entries.swap(devices_);
		windows_.clear();
		ports_.clear();
	}
	for (Entry &entry : entries)
		entry.binding->plugged.store(false, std::memory_order_release);
	// The devices are released here, outside the lock (a device's destructor may do anything).
}

// ---------------------------------------------------------------- helsimMmioRead/Write

namespace {

bool valid_width(unsigned width) { return width == 1 || width == 2 || width == 4 || width == 8; }

std::uint64_t width_mask(unsigned width) {
	return width == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * width)) - 1;
}

// A load or store of `width` bytes at `address` of the caller's space: the device hook if the
// address lands in a device's MMIO window, a plain checked access otherwise.
HelError mmio_access(Thread &self, std::uintptr_t address, unsigned width, bool write,
		std::uint64_t &value) {
	if (!valid_width(width) || address % width)
		return kHelErrIllegalArgs;
	AddressSpace &space = self.space();
	if (space.in_window(address, width)) {
		// Fault the page in as the access needs it (a write to a read-only mapping faults),
		// then see which frame it is.
		if (HelError e = space.fault_blocking(address, write ? Access::write : Access::read);
				e != kHelErrNone)
			return e;
		sim::PhysicalAddr physical;
		if (HelError e = space.physical_of(address, physical); e != kHelErrNone)
			return e;
		if (auto window = self.kernel().devices().at_physical(physical)) {
			// The hook runs with no kernel lock held, on this thread.
			if (write)
				window->device->mmio_write(window->offset, width, value & width_mask(width));
			else
				value = window->device->mmio_read(window->offset, width) & width_mask(width);
			return kHelErrNone;
		}
	}
	// Plain memory, through the user-access routines (host memory as they allow it).
	auto *user = reinterpret_cast<void *>(address);
	if (write)
		return copy_to_user(self, user, &value, width); // little-endian: the low bytes
	value = 0;
	return copy_from_user(self, &value, user, width);
}

} // namespace

HelError mmio_read(Thread &self, std::uintptr_t address, unsigned width, HelWord *outs) {
	std::uint64_t value = 0;
	HelError e = mmio_access(self, address, width, false, value);
	outs[0] = e == kHelErrNone ? value : 0;
	return e;
}

HelError mmio_write(Thread &self, std::uintptr_t address, unsigned width, std::uint64_t value) {
	return mmio_access(self, address, width, true, value);
}

} // namespace helsim::kernel
