// Kernlets: small functions the kernel runs in IRQ context when an automated IRQ object's
// line is raised (helAutomateIrq), to acknowledge or reject the interrupt without waking a
// driver thread. Managarm compiles kernlets from fafnir IR and uploads them as ELF objects
// through its kernletctl service; in helsim a kernlet is a host function registered here.
// A driver binds one to its arguments with helBindKernlet (HelKernletData: one handle or
// value per parameter) and attaches the bound kernlet with helAutomateIrq.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <helsim/hel.h>

namespace helsim {

class Machine;
namespace kernel {
class BoundKernlet;
struct IrqWork;
} // namespace kernel

// thor's KernletParameterType: what each HelKernletData of helBindKernlet holds.
enum class KernletParameter {
	offset,       // HelKernletData::handle read as a 32-bit value (a register offset)
	memory_view,  // a memory handle (helAccessPhysical, helAllocateMemory, ...): MMIO access
	bitset_event, // a bitset event handle (needs Signal): trigger_bitset raises its bits
};

// What a kernlet answers, as thor's kernlets return it: the IRQ was its device's and is
// handled (the line is acknowledged at once), or it was not (the sink nacks), or neither (a
// driver awaiting the IRQ object answers with helAcknowledgeIrq).
enum class KernletResult : int { none = 0, acknowledged = 1, nacked = 2 };

// A kernlet's view of its bound arguments, valid during the call.
class KernletContext {
public:
	KernletContext(const kernel::BoundKernlet &bound, kernel::IrqWork &work)
	: bound_{bound}, work_{work} {}

	std::size_t parameters() const;
	// The value bound to an offset parameter (0 for another kind or index).
	std::uint32_t offset(std::size_t index) const;
	// Reads or writes `size` bytes at `offset` of a memory_view parameter, straight in the
	// memory (thor maps the view into the kernel; helsim touches its frames). False, with
	// nothing copied, for another kind, a range past the view, or a page not present.
	bool read(std::size_t index, std::size_t offset, void *out, std::size_t size) const;
	bool write(std::size_t index, std::size_t offset, const void *in, std::size_t size) const;
	template <typename T>
	T read(std::size_t index, std::size_t offset) const {
		T value{};
		read(index, offset, &value, sizeof(T));
		return value;
	}
	// thor's __trigger_bitset: raises `bits` of a bitset_event parameter, once the IRQ's
	// handling is over (no kernel lock held then). Ignored for another kind or bits 0.
	void trigger_bitset(std::size_t index, std::uint32_t bits);

private:
	const kernel::BoundKernlet &bound_;
	kernel::IrqWork &work_;
};

// Runs in IRQ context with the line's lock held: it must not make hel calls or block. An
// exception it throws counts as KernletResult::none.
using KernletFn = std::function<KernletResult(KernletContext &)>;

// Registers a kernlet and returns a handle to it (kHelDescKernletObject, rights Assign) in the
// machine's root universe; hand it to a driver with spawn(name, entry, {handle}). Throws
// std::invalid_argument for an empty function.
HelHandle register_kernlet(Machine &machine, std::string name,
		std::vector<KernletParameter> signature, KernletFn fn);

} // namespace helsim
