// The interrupt half of the device contract (include/helsim/device.hpp): a device's lines
// reach the kernel's interrupt controller (src/kernel/devices/irq.hpp) through its binding, and the
// controller tells the device when the driver acknowledged a line. Also helsim/irq.hpp's
// lines without a device.
#include <helsim/device.hpp>
#include <helsim/irq.hpp>
#include <helsim/machine.hpp>

#include <stdexcept>
#include <string>

#include "device_binding.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/devices/irq.hpp"

namespace helsim {

namespace {

kernel::IrqLine &line_of(kernel::Kernel &kernel, unsigned gsi, const char *caller) {
	kernel::IrqLine *line = kernel.irqs().line(gsi);
	if (!line)
		throw std::out_of_range(std::string{"helsim: "} + caller + ": GSI " + std::to_string(gsi) +
				" is not below kGsiCount (" + std::to_string(kGsiCount) + ")");
	return *line;
}

} // namespace

void Device::raise_irq(unsigned line) {
	if (!binding_ || line >= binding_->address.gsis.size())
		throw std::out_of_range("helsim: Device::raise_irq: line " + std::to_string(line) +
				" is not one of the device's interrupt lines (DeviceConfig::irq_lines)");
	line_of(binding_->kernel, binding_->address.gsis[line], "Device::raise_irq").pulse();
}

void Device::set_irq_level(unsigned line, bool asserted) {
	if (!binding_ || line >= binding_->address.gsis.size())
		throw std::out_of_range("helsim: Device::set_irq_level: line " + std::to_string(line) +
				" is not one of the device's interrupt lines (DeviceConfig::irq_lines)");
	line_of(binding_->kernel, binding_->address.gsis[line], "Device::set_irq_level")
			.set_level(asserted);
}

void raise_gsi(Machine &machine, unsigned gsi) {
	line_of(machine.kernel_for_extensions(), gsi, "raise_gsi").pulse();
}

void set_gsi_level(Machine &machine, unsigned gsi, bool asserted) {
	line_of(machine.kernel_for_extensions(), gsi, "set_gsi_level").set_level(asserted);
}

IrqLineState irq_line_state(Machine &machine, unsigned gsi) {
	return line_of(machine.kernel_for_extensions(), gsi, "irq_line_state").state();
}

namespace detail {

void bind_device_irqs(DeviceBinding &binding, Device &device) {
	const auto &gsis = binding.address.gsis;
	for (unsigned gsi : gsis)
		if (!binding.kernel.irqs().line(gsi))
			throw std::invalid_argument(
					"helsim: plug: GSI " + std::to_string(gsi) + " is not below kGsiCount");
	for (unsigned i = 0; i < gsis.size(); ++i)
		binding.kernel.irqs().line(gsis[i])->bind_device(&device, i);
}

} // namespace detail

} // namespace helsim
