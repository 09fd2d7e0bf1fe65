#include "kernel/ipc/stream_actions.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "kernel/ipc/stream_packet.hpp"

namespace helsim::kernel {

namespace {

void mismatch(Stream &, Node &a, Node &b, Reaper &reaper) {
	// Unlike thor, helsim also fails the ancillary lists of a mismatched offer or accept, so
	// the exchange completes; docs/fidelity.md.
	fail_node(a, kHelErrTransmissionMismatch, reaper);
	fail_node(b, kHelErrTransmissionMismatch, reaper);
}

} // namespace

const PairRule kMismatchRule{mismatch, false, nullptr};

StreamActions::StreamActions() { register_builtin_actions(*this); }

void StreamActions::add_type(const ActionType &type) {
	std::size_t slot = action_slot(type.type);
	if (slot == kActionSlots)
		throw std::invalid_argument(fmt::format(
				"helsim: stream action types are Managarm's (below {}) or extensions' in [{:#x}, "
				"{:#x}), got {:#x}",
				kBuiltinActionSlots, kFirstExtensionAction,
				kFirstExtensionAction + static_cast<int>(kExtensionActionSlots), type.type));
	if (!type.name || !type.decode || !type.write_result)
		throw std::invalid_argument(
				fmt::format("helsim: stream action {:#x} needs a name, decode and write_result",
						type.type));
	std::lock_guard lock{mutex_};
	if (ActionRow *existing = rows_[slot].load(std::memory_order_relaxed))
		throw std::invalid_argument(fmt::format("helsim: stream action {:#x} is already {}",
				type.type, existing->type().name));
	ActionRow &row = row_storage_.emplace_back(type, slot);
	// A type that pairs with any meets every other, in both directions, and itself.
	for (auto &entry : rows_) {
		ActionRow *other = entry.load(std::memory_order_relaxed);
		if (!other)
			continue;
		if (type.pairs_with_any)
			set_rule(row, *other, type.pairs_with_any, false);
		else if (other->type().pairs_with_any)
			set_rule(*other, row, other->type().pairs_with_any, false);
	}
	if (type.pairs_with_any)
		set_rule(row, row, type.pairs_with_any, false);
	rows_[slot].store(&row, std::memory_order_release);
}

void StreamActions::add_pair(int first, int second, PairFunction function,
		ext::StreamPairFunction extension_pair) {
	if (!function)
		throw std::invalid_argument("helsim: a stream action pair without a function");
	std::lock_guard lock{mutex_};
	auto registered = [&](int type) -> ActionRow & {
		std::size_t slot = action_slot(type);
		ActionRow *row =
				slot < kActionSlots ? rows_[slot].load(std::memory_order_relaxed) : nullptr;
		if (!row)
			throw std::invalid_argument(
					fmt::format("helsim: stream action {:#x} is not registered", type));
		if (row->type().pairs_with_any)
			throw std::invalid_argument(
					fmt::format("helsim: stream action {} pairs with every action already",
							row->type().name));
		return *row;
	};
	ActionRow &a = registered(first);
	ActionRow &b = registered(second);
	if (&a.pair_rule(b) != &kMismatchRule)
		throw std::invalid_argument(fmt::format("helsim: stream actions {} and {} pair already",
				a.type().name, b.type().name));
	set_rule(a, b, function, true, extension_pair);
}

const PairRule &StreamActions::pair_rule(int a, int b) const {
	const ActionRow *row_a = row(a);
	const ActionRow *row_b = row(b);
	if (!row_a || !row_b)
		return kMismatchRule;
	return row_a->pair_rule(*row_b);
}

void StreamActions::set_rule(ActionRow &first, ActionRow &second, PairFunction function,
		bool by_type, ext::StreamPairFunction extension_pair) {
	const PairRule &forward = rule_storage_.emplace_back(PairRule{function, false, extension_pair});
	first.pairs_[second.slot_].store(&forward, std::memory_order_release);
	if (&first == &second)
		return;
	const PairRule &backward =
			rule_storage_.emplace_back(PairRule{function, by_type, extension_pair});
	second.pairs_[first.slot_].store(&backward, std::memory_order_release);
}

} // namespace helsim::kernel
