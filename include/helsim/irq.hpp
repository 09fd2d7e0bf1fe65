// Interrupt lines without a Device: host code and tests drive a GSI of the machine's
// simulated interrupt controller directly, as a device model would through
// Device::raise_irq / Device::set_irq_level. Drivers see the line through helAccessIrq,
// helHandleIrq, kHelSubmitAwaitEvent and helAcknowledgeIrq (docs/reference/irq.md).
#pragma once

#include <cstdint>

namespace helsim {

class Machine;

// GSIs the controller has: helAccessIrq(token, kHelAccessIrqByGsi, 0, gsi, ...) accepts
// [0, kGsiCount). plug() gives devices GSIs from 16 up; 0..15 are free for raise_gsi.
inline constexpr unsigned kGsiCount = 256;

// One edge on `gsi` (on a level-triggered line: a short assertion). An edge that finds the
// line masked is lost, as on an I/O APIC; one that finds it in service is buffered (at most
// one, thor's raiseBuffered). Call it from a simulated thread or a device hook (in threads
// mode also from a host thread while the machine runs). Throws std::out_of_range for
// gsi >= kGsiCount.
void raise_gsi(Machine &machine, unsigned gsi);

// Drives the level of `gsi` (true: asserted; the configured polarity is the controller's
// business, not the caller's). On an edge-triggered line a rising level is one edge; on a
// level-triggered line the IRQ is raised whenever the line is asserted while unmasked and out
// of service. Throws std::out_of_range for gsi >= kGsiCount.
void set_gsi_level(Machine &machine, unsigned gsi, bool asserted);

// A snapshot of a line, for tests and debugging (thor's IrqPin fields).
struct IrqLineState {
	bool configured = false;
	std::uint32_t trigger = 0;  // kHelIrqTrigger*
	std::uint32_t polarity = 0; // kHelIrqPolarity*
	bool level = false;         // the input's level (set_gsi_level)
	bool in_service = false;    // raised and not yet acknowledged by every sink
	bool masked_for_service = false, masked_while_buffered = false, masked_for_nack = false;
	bool edge_buffered = false;
	unsigned sinks = 0;         // IRQ objects (helHandleIrq) attached
	std::uint64_t services = 0; // times the line was raised to its sinks
	std::uint64_t dropped = 0;  // edges that found the line masked
};
IrqLineState irq_line_state(Machine &machine, unsigned gsi);

} // namespace helsim
