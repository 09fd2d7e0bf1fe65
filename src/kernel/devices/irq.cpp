#include "kernel/devices/irq.hpp"

#include <algorithm>
#include <mutex>
#include <utility>

#include <helsim/device.hpp>
#include <helsim/irq.hpp>

#include "device_binding.hpp"
#include "kernel/devices/event.hpp"
#include "kernel/devices/kernlet.hpp"

namespace helsim::kernel {

static_assert(helsim::kGsiCount == detail::kGsiCount);

// ---------------------------------------------------------------- the protocol
//
// As thor's IrqPin, every decision is taken under the line's lock; what it leads to runs after
// the lock, from an IrqWork, in this order: (1) the awaits a raise took complete (their
// queues' ordinary posting path); (2) bitset events a kernlet triggered are raised; (3) the
// device that drives the line hears of the acknowledgement (Device::irq_acknowledged), and
// may drive the line again. Lock order: the line's lock, then an IRQ object's wait list lock
// (Event::take_raised) -- never the other way round: an await takes the wait list's lock only.

void IrqWork::run() {
	for (Event::Taken &taken : completions)
		taken.complete();
	for (auto &[event, bits] : triggers)
		event->raise(bits);
	if (acknowledged_device)
		acknowledged_device->irq_acknowledged(acknowledged_line);
}

// ---------------------------------------------------------------- IrqLine

HelError IrqLine::configure(std::uint32_t trigger, std::uint32_t polarity) {
	// thor asserts that the configuration is specified and compatible with the one in force.
	if (trigger != kHelIrqTriggerEdge && trigger != kHelIrqTriggerLevel)
		return kHelErrIllegalArgs;
	if (polarity != kHelIrqPolarityHigh && polarity != kHelIrqPolarityLow)
		return kHelErrIllegalArgs;
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		if (configured_)
			return trigger == trigger_ && polarity == polarity_ ? kHelErrNone : kHelErrIllegalState;
		configured_ = true;
		trigger_ = trigger;
		polarity_ = polarity;
		strategy_ = trigger == kHelIrqTriggerLevel ? Strategy::mask_then_eoi : Strategy::just_eoi;
		// thor resets the service state when a pin is first configured.
		in_service_ = false;
		raise_buffered_ = false;
		due_sinks_ = 0;
		mask_ = 0;
		recheck_level(work);
	}
	work.run();
	return kHelErrNone;
}

void IrqLine::pulse() {
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		edge(work);
	}
	work.run();
}

void IrqLine::set_level(bool asserted) {
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		bool rising = asserted && !level_;
		level_ = asserted;
		if (strategy_ == Strategy::mask_then_eoi)
			recheck_level(work);
		else if (rising)
			edge(work);
	}
	work.run();
}

// thor's IrqPin::raise, reached only when the controller delivers: a masked line does not
// deliver (thor handles that case as a hardware race), an edge in service is buffered.
void IrqLine::edge(IrqWork &work) {
	if (mask_) {
		++dropped_;
		return;
	}
	if (in_service_) {
		// Only a justEoi line is unmasked in service.
		raise_buffered_ = true;
		mask_ |= kMaskedWhileBuffered;
		return;
	}
	service(work);
}

// thor's _doService: every sink hears of the raise; those that answer at once (a kernlet)
// decide it, otherwise the line stays in service until every other sink answered.
void IrqLine::service(IrqWork &work) {
	in_service_ = true;
	if (strategy_ == Strategy::mask_then_eoi)
		mask_ |= kMaskedForService;
	due_sinks_ = 0;
	dispatch_acks_ = false;
	dispatch_kicks_ = false;
	++services_;

	unsigned asynchronous = 0;
	bool any_ack = false;
	for (IrqObject *sink : sinks_) {
		IrqStatus status = sink->raise(work);
		sink->status_ = status;
		if (status == IrqStatus::acked)
			any_ack = true;
		else if (status != IrqStatus::nacked)
			++asynchronous;
	}
	if (!asynchronous) {
		if (any_ack) {
			leave_service(work);
		} else {
			// Nacked by every sink, or no sink at all: the line stalls, masked, until a kick.
			mask_ |= kMaskedForNack;
		}
		return;
	}
	if (any_ack)
		dispatch_acks_ = true;
	due_sinks_ = asynchronous;
}

void IrqLine::leave_service(IrqWork &work) {
	in_service_ = false;
	mask_ &= ~kMaskedForService;
	if (device_) {
		work.acknowledged_device = device_;
		work.acknowledged_line = device_line_;
	}
}

// thor's _acknowledge, _nack and _kick. A sink whose answer is due implies a line in service
// with that answer counted -- except after the first helConfigureIrq, which resets the
// service state under sinks still indefinite (thor asserts there); helsim lets those answers
// change nothing.
void IrqLine::acknowledged(IrqWork &work) {
	if (!in_service_ || !due_sinks_)
		return;
	dispatch_acks_ = true;
	if (!--due_sinks_)
		dispatch(work);
}

void IrqLine::nacked(IrqWork &work) {
	if (!in_service_ || !due_sinks_)
		return;
	if (!--due_sinks_)
		dispatch(work);
}

void IrqLine::kicked(bool clear, IrqWork &work) {
	if (clear) {
		if (!in_service_ || !due_sinks_)
			return;
		--due_sinks_;
	} else if (!in_service_) {
		return;
	}
	dispatch_kicks_ = true;
	if (!due_sinks_)
		dispatch(work);
}

// thor's _dispatch: every sink has answered (or a kick cuts the wait short).
void IrqLine::dispatch(IrqWork &work) {
	if (dispatch_kicks_)
		mask_ &= ~kMaskedForNack;
	if (dispatch_acks_ || dispatch_kicks_) {
		leave_service(work);
		// The edge buffered while in service raises now.
		if (raise_buffered_) {
			raise_buffered_ = false;
			mask_ &= ~kMaskedWhileBuffered;
			service(work);
			return;
		}
		recheck_level(work);
	} else {
		// Every sink nacked: the line stalls, masked, until a kick.
		mask_ |= kMaskedForNack;
	}
}

void IrqLine::recheck_level(IrqWork &work) {
	if (strategy_ == Strategy::mask_then_eoi && level_ && !mask_ && !in_service_)
		service(work);
}

void IrqLine::attach(IrqObject &sink) {
	std::lock_guard lock{lock_};
	sinks_.push_back(&sink);
}

void IrqLine::detach(IrqObject &sink) {
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		std::erase(sinks_, &sink);
		// A sink that goes away owing an answer must not keep the line in service for good.
		if (sink.status_ == IrqStatus::indefinite) {
			sink.status_ = IrqStatus::nacked;
			nacked(work);
		}
	}
	work.run();
}

// thor's ackSink and nackSink: the sink's answer to the IRQ of `sequence`, which it still owes.
HelError IrqLine::answer(IrqObject &sink, std::uint64_t sequence, bool handled) {
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		if (sequence != sink.sequence_ || sink.status_ != IrqStatus::indefinite)
			return kHelErrIllegalArgs;
		sink.status_ = handled ? IrqStatus::acked : IrqStatus::nacked;
		if (handled)
			acknowledged(work);
		else
			nacked(work);
	}
	work.run();
	return kHelErrNone;
}

// thor's kickSink: with kHelAckClear, a kick is also the sink's acknowledgement if it owes
// one; the sequence is not looked at.
HelError IrqLine::kick(IrqObject &sink, bool clear) {
	IrqWork work;
	{
		std::lock_guard lock{lock_};
		if (clear && sink.status_ == IrqStatus::indefinite) {
			sink.status_ = IrqStatus::acked;
			kicked(true, work);
		} else {
			kicked(false, work);
		}
	}
	work.run();
	return kHelErrNone;
}

void IrqLine::automate(IrqObject &sink, Ref<BoundKernlet> kernlet) {
	Ref<BoundKernlet> previous;
	{
		std::lock_guard lock{lock_};
		previous = std::exchange(sink.automation_, std::move(kernlet));
	}
	// `previous` is released here, without the lock.
}

void IrqLine::bind_device(Device *device, unsigned line) {
	std::lock_guard lock{lock_};
	device_ = device;
	device_line_ = line;
}

IrqLineState IrqLine::state() {
	std::lock_guard lock{lock_};
	IrqLineState s;
	s.configured = configured_;
	s.trigger = trigger_;
	s.polarity = polarity_;
	s.level = level_;
	s.in_service = in_service_;
	s.masked_for_service = mask_ & kMaskedForService;
	s.masked_while_buffered = mask_ & kMaskedWhileBuffered;
	s.masked_for_nack = mask_ & kMaskedForNack;
	s.edge_buffered = raise_buffered_;
	s.sinks = static_cast<unsigned>(sinks_.size());
	s.services = services_;
	s.dropped = dropped_;
	return s;
}

// ---------------------------------------------------------------- IrqController

IrqController::IrqController() : lines_{std::make_unique<IrqLine[]>(detail::kGsiCount)} {
	for (unsigned gsi = 0; gsi < detail::kGsiCount; ++gsi)
		lines_[gsi].set_gsi(gsi);
}

IrqLine *IrqController::line(std::uint64_t gsi) {
	return gsi < detail::kGsiCount ? &lines_[gsi] : nullptr;
}

unsigned IrqController::size() { return detail::kGsiCount; }

// ---------------------------------------------------------------- IrqObject

IrqObject::IrqObject(Kernel &kernel, IrqLine &line) : Event{kernel, kKind}, line_{line} {
	line_.attach(*this);
}

// First of all: off the line, so no raise reaches a dying object.
IrqObject::~IrqObject() { line_.detach(*this); }

void IrqObject::for_each_reference(const std::function<void(Object &)> &f) {
	Ref<BoundKernlet> kernlet;
	{
		std::lock_guard lock{line_.lock_};
		kernlet = automation_;
	}
	if (kernlet)
		f(*kernlet);
}

IrqStatus IrqObject::raise(IrqWork &work) {
	// thor's IrqObject::raise: the sequence counts up and every waiting await completes with
	// it (no bits: an IRQ has none).
	work.completions.push_back(take_raised([](Event &self, HelEventResult &result) {
		auto &irq = static_cast<IrqObject &>(self);
		++irq.sequence_;
		result = {kHelErrNone, 0, irq.sequence_};
	}));
	if (!automation_)
		return IrqStatus::indefinite;
	switch (automation_->invoke(work)) {
	case KernletResult::acknowledged: return IrqStatus::acked;
	case KernletResult::nacked: return IrqStatus::nacked;
	case KernletResult::none: break;
	}
	return IrqStatus::indefinite;
}

// thor (IrqObject::submitAwait): a sequence below the current one completes at once with the
// current sequence; the current one waits for the next raise. A sequence from the future is an
// assertion in thor: kHelErrIllegalArgs here, as for events.
bool IrqObject::completes_now(std::uint64_t sequence, HelEventResult &result) {
	if (sequence > sequence_)
		result = {kHelErrIllegalArgs, 0, 0};
	else if (sequence < sequence_)
		result = {kHelErrNone, 0, sequence_};
	else
		return false;
	return true;
}

} // namespace helsim::kernel
