// Stream action types: one row per type and a pairing table, the only places that know what
// an action does. A row decodes the action at submission and writes its result into the
// completion; a pair rule says what happens when two actions meet on a stream. The built-in
// actions (stream_builtin_actions.cpp) register through the same calls an extension does.
//
// Action types map to slots: Managarm's kHelAction* numbers below kBuiltinActionSlots, then
// kExtensionActionSlots numbers from kFirstExtensionAction. A node keeps a pointer to its row,
// and a row holds its line of the pairing table, so pairing two nodes is two loads and a call.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>

#include <helsim/extension_kernel.hpp>
#include <helsim/hel.h>

#include "kernel/core/object.hpp"

namespace helsim::sim {
class TraceRecorder;
}

namespace helsim::kernel {

class Reaper;
class Stream;
class Thread;
struct Node;

inline constexpr std::size_t kBuiltinActionSlots = 16;
inline constexpr std::size_t kExtensionActionSlots = ext::kExtensionActionCount;
inline constexpr std::size_t kActionSlots = kBuiltinActionSlots + kExtensionActionSlots;
inline constexpr int kFirstExtensionAction = ext::kFirstExtensionAction;

// The slot of action type `type`, or kActionSlots if no slot can hold it.
constexpr std::size_t action_slot(int type) {
	auto number = static_cast<std::uint32_t>(type);
	if (number < kBuiltinActionSlots)
		return number;
	number -= static_cast<std::uint32_t>(kFirstExtensionAction); // wraps below the range
	return number < kExtensionActionSlots ? kBuiltinActionSlots + number : kActionSlots;
}

// What a decoded action needs of its packet: the submitter's address space (a copy to or from
// user memory when it pairs), or its universe (a handle attached when it pairs).
struct ActionNeeds {
	bool space = false;
	bool universe = false;
};

// Writes a completion element's results, each part padded to 8 bytes.
class ResultWriter {
public:
	explicit ResultWriter(std::byte *out) : out_{out} {}
	void put(const void *data, std::size_t size) {
		std::memcpy(out_, data, size);
		std::size_t padded = (size + 7) & ~std::size_t{7};
		if (padded != size)
			std::memset(out_ + size, 0, padded - size);
		out_ += padded;
	}
	std::byte *position() const { return out_; }

private:
	std::byte *out_;
};

// Runs when two queued nodes meet, with no stream lock held: `first` is of the rule's first
// type, `second` of its second. It finishes both nodes, now or later (a deferred copy).
using PairFunction = void (*)(Stream &stream, Node &first, Node &second, Reaper &reaper);

struct ActionType {
	int type;
	const char *name; // hel's name, for reports (the deadlock report, pending operations)
	// Item flags the action accepts besides kHelItemChain (kHelItemAncillary, kHelItemWantLane).
	std::uint32_t item_flags;
	// The most bytes the result takes in the completion element (checked against the queue at
	// submission); write_result writes no more, padding included.
	std::size_t max_result_size;
	void (*write_result)(const Node &node, ResultWriter &out);
	// Validates the action and captures its request into the node. An error refuses the whole
	// submission; a fault that belongs to the pairing is kept in the node instead.
	HelError (*decode)(Thread &self, const HelAction &action, Node &node, ActionNeeds &needs);
	// With tracing on, once the submission is accepted (a flow starts); may be null.
	void (*trace_submit)(sim::TraceRecorder &tracer, Thread &self, const HelAction &action,
			Node &node);
	// Pairs with every action, itself included (dismiss), taking the two nodes in the order
	// they met (the submitted one first); null for most types.
	PairFunction pairs_with_any;
	// An extension's row: what `decode` calls (stream_extension.cpp); null for built-ins.
	ext::StreamDecodeFunction extension_decode;
};

// Which function runs when a node of one type meets a node of another, and in which order it
// takes them.
struct PairRule {
	PairFunction function;
	bool swapped; // the function takes the second node of the lookup first
	// An extension's pair: what `function` calls (stream_extension.cpp); null for built-ins.
	ext::StreamPairFunction extension_pair;

	void run(Stream &stream, Node &a, Node &b, Reaper &reaper) const {
		if (swapped)
			function(stream, b, a, reaper);
		else
			function(stream, a, b, reaper);
	}
};

// Both nodes fail with kHelErrTransmissionMismatch: what meets without a rule.
extern const PairRule kMismatchRule;

class ActionRow {
public:
	ActionRow(const ActionType &type, std::size_t slot) : type_{type}, slot_{slot} {
		for (auto &rule : pairs_)
			rule.store(&kMismatchRule, std::memory_order_relaxed);
	}

	const ActionType &type() const { return type_; }
	std::size_t slot() const { return slot_; }
	const PairRule &pair_rule(const ActionRow &other) const {
		return *pairs_[other.slot_].load(std::memory_order_acquire);
	}

private:
	friend class StreamActions;

	ActionType type_;
	std::size_t slot_;
	std::array<std::atomic<const PairRule *>, kActionSlots> pairs_;
};

// The registry of one kernel. Rows and rules can be added while the machine runs: each is
// published with one release store, and never changes or goes away afterwards.
class StreamActions {
public:
	// With the built-in actions registered.
	StreamActions();
	StreamActions(const StreamActions &) = delete;
	StreamActions &operator=(const StreamActions &) = delete;

	// Adds a row. Throws std::invalid_argument for a type outside both ranges, a type already
	// registered, or a row without a name, decode or write_result.
	void add_type(const ActionType &type);
	// Adds the rule for `first` meeting `second` (either order). Throws std::invalid_argument
	// for an unregistered type, a type that pairs with any, or a pair that has a rule already.
	void add_pair(int first, int second, PairFunction function,
			ext::StreamPairFunction extension_pair = nullptr);

	// The row of `type`, or nullptr if none is registered.
	const ActionRow *row(int type) const {
		std::size_t slot = action_slot(type);
		return slot < kActionSlots ? rows_[slot].load(std::memory_order_acquire) : nullptr;
	}
	// The rule for a node of `a` meeting a node of `b`; kMismatchRule if there is none (or a
	// type is not registered).
	const PairRule &pair_rule(int a, int b) const;

private:
	// by_type: the function takes `first`'s node first whichever order the nodes met in;
	// otherwise it takes them in the order they met (pairs_with_any).
	void set_rule(ActionRow &first, ActionRow &second, PairFunction function, bool by_type,
			ext::StreamPairFunction extension_pair = nullptr);

	std::mutex mutex_; // serialises registrations
	std::deque<ActionRow> row_storage_;
	std::deque<PairRule> rule_storage_;
	std::array<std::atomic<ActionRow *>, kActionSlots> rows_{};
};

// Registers Managarm's actions (stream_builtin_actions.cpp), send and receive among them
// (stream_transfer_actions.cpp).
void register_builtin_actions(StreamActions &actions);
void register_transfer_actions(StreamActions &actions);

// ---------------------------------------------------------------- for pair functions

// Finishes a node with `error`; its packet completes with the last of its nodes.
void finish_node(Node &node, HelError error, Reaper &reaper);
// Fails a node together with its ancillary list, which then never reaches a child stream.
void fail_node(Node &node, HelError error, Reaper &reaper);
// Runs the rule of a buffered sendFromBuffer meeting `recv` with `send` in its place: `send`
// must be buffered (its data in the kernel). How an extension's send delivers to a receive.
void deliver_buffered(Stream &stream, Node &send, Node &recv, Reaper &reaper);
// pushDescriptor's decode: keeps the descriptor `handle` names in `self`'s universe in
// node.pushed, its rights masked by `exposed`. kHelErrNoDescriptor from the lookup, then
// kHelErrBadRights when `required` is not a subset of the descriptor's rights.
HelError capture_pushed(Thread &self, HelHandle handle, std::uint32_t required,
		std::uint32_t exposed, Node &node);
// pushDescriptor meeting pullDescriptor, or any node that pulls like one: attaches
// push.pushed in `pull`'s submitter's universe if pull_accepts, and finishes both.
void pair_descriptor(Stream &stream, Node &push, Node &pull, Reaper &reaper);
// Whether `pull` requires no rights the pushed descriptor lacks.
bool pull_accepts(const Node &push, const Node &pull);
// Attaches a descriptor in the universe of the node's submitter and keeps the handle in the
// node (its row must have set ActionNeeds::universe). kHelErrThreadTerminated when that
// universe is gone.
HelError attach_to_submitter(Node &node, Ref<Object> object, std::uint32_t rights);

} // namespace helsim::kernel
