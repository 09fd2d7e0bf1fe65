// The simulated interrupt controller and IRQ objects: helAccessIrq, helHandleIrq,
// helConfigureIrq, helAcknowledgeIrq, helAutomateIrq, and kHelSubmitAwaitEvent on an IRQ
// object. Semantics as thor's irq.cpp: an IrqLine is thor's IrqPin (one per GSI, with its
// strategy, its service state and its mask bits); an IrqObject is thor's IrqSink with the
// sequence counter user space awaits and acknowledges.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernel/core/object.hpp"
#include "kernel/core/spinlock.hpp"
#include "kernel/devices/event.hpp"

namespace helsim {
class Device;
struct IrqLineState;
} // namespace helsim

namespace helsim::kernel {

class BitsetEvent;
class BoundKernlet;
class IrqObject;

// What helAccessIrq and helHandleIrq hand out (thor: pin Assign and Manage; IRQ object Wait
// and Signal).
inline constexpr std::uint32_t kIrqPinDefaultRights = kHelRightAssign | kHelRightManage;
inline constexpr std::uint32_t kIrqDefaultRights = kHelRightWait | kHelRightSignal;

// thor's IrqStatus: a sink's answer to the last raise.
enum class IrqStatus { stand_by, indefinite, acked, nacked };

// What a line's state change leaves to be done once its lock is released: await
// completions, bitset events a kernlet triggered, the device's acknowledgement hook.
struct IrqWork {
	std::vector<Event::Taken> completions;
	std::vector<std::pair<Ref<BitsetEvent>, std::uint32_t>> triggers;
	Device *acknowledged_device = nullptr;
	unsigned acknowledged_line = 0;

	// Runs it all, with no lock held.
	void run();
};

// One input of the interrupt controller (thor's IrqPin). Every member below is guarded by
// the line's lock; an IrqObject's sequence and status too (its sequence also by its wait
// list's lock, which is taken inside this one).
class IrqLine {
public:
	IrqLine() = default;
	IrqLine(const IrqLine &) = delete;
	IrqLine &operator=(const IrqLine &) = delete;

	void set_gsi(unsigned gsi) { gsi_ = gsi; }
	unsigned gsi() const { return gsi_; }

	// helConfigureIrq: kHelErrIllegalArgs for a trigger or polarity that is not Edge/Level,
	// High/Low; kHelErrIllegalState for a configuration other than the one in force.
	HelError configure(std::uint32_t trigger, std::uint32_t polarity);

	// The line's input. pulse(): one edge (on a level-triggered line, a short assertion).
	// set_level(): the level a device drives; a rising level is an edge on an edge-triggered
	// line, and on a level-triggered one raises the IRQ whenever the line is unmasked and out
	// of service while asserted.
	void pulse();
	void set_level(bool asserted);

	// IRQ objects (thor's attachSink; detach when an object dies).
	void attach(IrqObject &sink);
	void detach(IrqObject &sink);
	// helAcknowledgeIrq (thor's ackSink, nackSink, kickSink).
	// `handled`: an ack; otherwise a nack.
	HelError answer(IrqObject &sink, std::uint64_t sequence, bool handled);
	HelError kick(IrqObject &sink, bool clear);
	// helAutomateIrq.
	void automate(IrqObject &sink, Ref<BoundKernlet> kernlet);

	// The device that drives this line, told of acknowledgements (Device::irq_acknowledged).
	void bind_device(Device *device, unsigned line);

	IrqLineState state();

private:
	friend class IrqObject;

	// thor's strategies: justEoi for edge-triggered (and unconfigured) lines, maskThenEoi for
	// level-triggered ones.
	enum class Strategy { just_eoi, mask_then_eoi };
	// thor's mask bits.
	static constexpr unsigned kMaskedForService = 1, kMaskedWhileBuffered = 2, kMaskedForNack = 4;

	void edge(IrqWork &work);
	void service(IrqWork &work);
	void acknowledged(IrqWork &work);
	void nacked(IrqWork &work);
	void kicked(bool clear, IrqWork &work);
	void dispatch(IrqWork &work);
	void leave_service(IrqWork &work);
	// A level-triggered line still asserted when it comes out of service and unmasked raises
	// again (once per change: a kernlet that acknowledges a level the device never lowers does
	// not spin the simulation forever).
	void recheck_level(IrqWork &work);

	SpinLock lock_;
	unsigned gsi_ = 0;
	bool configured_ = false;
	std::uint32_t trigger_ = kHelIrqTriggerNull;
	std::uint32_t polarity_ = kHelIrqPolarityNull;
	Strategy strategy_ = Strategy::just_eoi;
	bool level_ = false;
	bool in_service_ = false;
	bool raise_buffered_ = false;
	bool dispatch_acks_ = false;
	bool dispatch_kicks_ = false;
	unsigned due_sinks_ = 0;
	unsigned mask_ = 0;
	std::uint64_t services_ = 0;
	std::uint64_t dropped_ = 0;
	std::vector<IrqObject *> sinks_;
	Device *device_ = nullptr;
	unsigned device_line_ = 0;
};

// Every line, by GSI.
class IrqController {
public:
	IrqController();
	IrqLine *line(std::uint64_t gsi);
	static unsigned size();

private:
	std::unique_ptr<IrqLine[]> lines_;
};

// helAccessIrq's handle: a line of the controller.
class IrqPin final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::irq_pin;
	IrqPin(Kernel &kernel, IrqLine &line) : Object{kernel, kKind}, line_{line} {}
	IrqLine &line() const { return line_; }

private:
	IrqLine &line_;
};

// helHandleIrq's handle: a sink of one line. Created in thor's standBy state with sequence 0;
// each raise of the line counts the sequence up and completes the awaits waiting on it.
class IrqObject final : public Event {
public:
	static constexpr ObjectKind kKind = ObjectKind::irq;
	IrqObject(Kernel &kernel, IrqLine &line);
	~IrqObject() override;

	IrqLine &line() const { return line_; }
	void for_each_reference(const std::function<void(Object &)> &f) override;

private:
	friend class IrqLine;

	// Under the line's lock: the line raises; completes (later, through `work`) the waiting
	// awaits and runs the automation kernlet, whose answer is the sink's status.
	IrqStatus raise(IrqWork &work);

	bool completes_now(std::uint64_t sequence, HelEventResult &result) override;
	bool cancellable_by_tag() const override { return false; }

	IrqLine &line_;
	std::uint64_t sequence_ = 0;
	IrqStatus status_ = IrqStatus::stand_by;
	Ref<BoundKernlet> automation_;
};

} // namespace helsim::kernel
