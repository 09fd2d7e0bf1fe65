// The stream action registry and its pairing table (src/kernel/ipc/stream_actions.cpp), asked
// directly: no machine runs, so a failure names the row or the rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "kernel/ipc/stream_actions.hpp"
#include "kernel/ipc/stream_packet.hpp"

using namespace helsim::kernel;

namespace {

constexpr std::array kBuiltins{kHelActionDismiss, kHelActionOffer, kHelActionAccept,
		kHelActionImbueCredentials, kHelActionExtractCredentials, kHelActionSendFromBuffer,
		kHelActionSendFromBufferSg, kHelActionRecvInline, kHelActionRecvToBuffer,
		kHelActionPushDescriptor, kHelActionPullDescriptor};

// Every pair of built-in types that meets by type, the first type being the one the pair
// function takes first.
constexpr std::array<std::pair<int, int>, 7> kTypedPairs{{
		{kHelActionOffer, kHelActionAccept},
		{kHelActionImbueCredentials, kHelActionExtractCredentials},
		{kHelActionPushDescriptor, kHelActionPullDescriptor},
		{kHelActionSendFromBuffer, kHelActionRecvInline},
		{kHelActionSendFromBuffer, kHelActionRecvToBuffer},
		{kHelActionSendFromBufferSg, kHelActionRecvInline},
		{kHelActionSendFromBufferSg, kHelActionRecvToBuffer},
}};

bool typed_pair(int a, int b) {
	return std::any_of(kTypedPairs.begin(), kTypedPairs.end(), [&](auto p) {
		return (p.first == a && p.second == b) || (p.first == b && p.second == a);
	});
}

HelError decode_nothing(Thread &, const HelAction &, Node &, ActionNeeds &) { return kHelErrNone; }
void write_nothing(const Node &, ResultWriter &) {}
void pair_nothing(Stream &, Node &, Node &, Reaper &) {}

ActionType extension_type(int type) {
	return {type, "extension", 0, 8, write_nothing, decode_nothing, nullptr, nullptr, nullptr};
}

} // namespace

TEST(StreamActionSlots, ManagarmNumbersAndTheExtensionRangeHaveSlotsNothingElse) {
	EXPECT_EQ(action_slot(0), 0u);
	EXPECT_EQ(action_slot(kHelActionDismiss), std::size_t{kHelActionDismiss});
	EXPECT_EQ(action_slot(15), 15u);
	EXPECT_EQ(action_slot(16), kActionSlots);
	EXPECT_EQ(action_slot(-1), kActionSlots);
	EXPECT_EQ(action_slot(kFirstExtensionAction - 1), kActionSlots);
	EXPECT_EQ(action_slot(kFirstExtensionAction), kBuiltinActionSlots);
	EXPECT_EQ(action_slot(kFirstExtensionAction + int{kExtensionActionSlots} - 1),
			kActionSlots - 1);
	EXPECT_EQ(action_slot(kFirstExtensionAction + int{kExtensionActionSlots}), kActionSlots);
}

TEST(StreamActionRows, EveryBuiltinHasARowWithHelsNameAndItsResult) {
	StreamActions actions;
	struct Expected {
		int type;
		const char *name;
		std::size_t result;
	};
	for (auto [type, name, result] : std::array<Expected, 11>{{
				 {kHelActionDismiss, "dismiss", sizeof(HelSimpleResult)},
				 {kHelActionOffer, "offer", sizeof(HelHandleResult)},
				 {kHelActionAccept, "accept", sizeof(HelHandleResult)},
				 {kHelActionImbueCredentials, "imbueCredentials", sizeof(HelSimpleResult)},
				 {kHelActionExtractCredentials, "extractCredentials", sizeof(HelCredentialsResult)},
				 {kHelActionSendFromBuffer, "sendFromBuffer", sizeof(HelSimpleResult)},
				 {kHelActionSendFromBufferSg, "sendFromBufferSg", sizeof(HelSimpleResult)},
				 {kHelActionRecvInline, "recvInline",
						 sizeof(HelInlineResultNoFlex) + kMaxInlineReceive},
				 {kHelActionRecvToBuffer, "recvToBuffer", sizeof(HelLengthResult)},
				 {kHelActionPushDescriptor, "pushDescriptor", sizeof(HelSimpleResult)},
				 {kHelActionPullDescriptor, "pullDescriptor", sizeof(HelHandleResult)},
		 }}) {
		const ActionRow *row = actions.row(type);
		ASSERT_NE(row, nullptr) << name;
		EXPECT_EQ(row->type().type, type);
		EXPECT_STREQ(row->type().name, name);
		EXPECT_EQ(row->type().max_result_size, pad8(result)) << name;
	}
}

TEST(StreamActionRows, OnlyOfferAndAcceptTakeAncillaryListsAndOnlyOfferWantsALane) {
	StreamActions actions;
	for (int type : kBuiltins) {
		std::uint32_t flags = actions.row(type)->type().item_flags;
		bool offer_or_accept = type == kHelActionOffer || type == kHelActionAccept;
		EXPECT_EQ((flags & kHelItemAncillary) != 0, offer_or_accept) << type;
		EXPECT_EQ((flags & kHelItemWantLane) != 0, type == kHelActionOffer) << type;
	}
}

TEST(StreamActionRows, NumbersWithoutARowHaveNone) {
	StreamActions actions;
	for (int type : {int{kHelActionNone}, 12, 15, 16, -1, kFirstExtensionAction, 0x7fffffff})
		EXPECT_EQ(actions.row(type), nullptr) << type;
	EXPECT_EQ(&actions.pair_rule(kHelActionNone, kHelActionRecvInline), &kMismatchRule);
	EXPECT_EQ(&actions.pair_rule(kHelActionSendFromBuffer, 12), &kMismatchRule);
}

TEST(StreamPairingTable, EveryBuiltinPairIsPresentAndSymmetric) {
	StreamActions actions;
	for (auto [first, second] : kTypedPairs) {
		const PairRule &forward = actions.pair_rule(first, second);
		const PairRule &backward = actions.pair_rule(second, first);
		EXPECT_NE(&forward, &kMismatchRule) << first << " with " << second;
		EXPECT_EQ(forward.function, backward.function) << first << " with " << second;
		EXPECT_FALSE(forward.swapped) << first << " with " << second;
		EXPECT_TRUE(backward.swapped) << second << " with " << first;
	}
}

TEST(StreamPairingTable, SendsShareOnePairFunctionPerReceive) {
	StreamActions actions;
	for (int recv : {kHelActionRecvInline, kHelActionRecvToBuffer})
		EXPECT_EQ(actions.pair_rule(kHelActionSendFromBuffer, recv).function,
				actions.pair_rule(kHelActionSendFromBufferSg, recv).function);
	EXPECT_NE(actions.pair_rule(kHelActionSendFromBuffer, kHelActionRecvInline).function,
			actions.pair_rule(kHelActionSendFromBuffer, kHelActionRecvToBuffer).function);
}

TEST(StreamPairingTable, DismissMeetsEveryTypeItselfIncludedInTheOrderTheyMet) {
	StreamActions actions;
	PairFunction dismiss = actions.pair_rule(kHelActionDismiss, kHelActionDismiss).function;
	ASSERT_NE(dismiss, kMismatchRule.function);
	for (int type : kBuiltins) {
		for (auto [a, b] : {std::pair<int, int>{kHelActionDismiss, type},
					 std::pair<int, int>{type, kHelActionDismiss}}) {
			const PairRule &rule = actions.pair_rule(a, b);
			EXPECT_EQ(rule.function, dismiss) << a << " with " << b;
			EXPECT_FALSE(rule.swapped) << a << " with " << b;
		}
	}
}

TEST(StreamPairingTable, EveryOtherBuiltinPairIsAMismatch) {
	StreamActions actions;
	for (int a : kBuiltins) {
		for (int b : kBuiltins) {
			if (a != kHelActionDismiss && b != kHelActionDismiss && !typed_pair(a, b)) {
				EXPECT_EQ(&actions.pair_rule(a, b), &kMismatchRule) << a << " with " << b;
			}
		}
	}
}

TEST(StreamActionRegistry, RefusesTypesOutsideBothRangesTakenTypesAndIncompleteRows) {
	StreamActions actions;
	for (int type : {16, kFirstExtensionAction - 1, kFirstExtensionAction + 16, -1})
		EXPECT_THROW(actions.add_type(extension_type(type)), std::invalid_argument) << type;
	EXPECT_THROW(actions.add_type(extension_type(kHelActionOffer)), std::invalid_argument);
	ActionType incomplete = extension_type(kFirstExtensionAction);
	incomplete.decode = nullptr;
	EXPECT_THROW(actions.add_type(incomplete), std::invalid_argument);
	incomplete = extension_type(kFirstExtensionAction);
	incomplete.name = nullptr;
	EXPECT_THROW(actions.add_type(incomplete), std::invalid_argument);
	EXPECT_EQ(actions.row(kFirstExtensionAction), nullptr);
}

TEST(StreamActionRegistry, AnExtensionTypeMeetsDismissAndPairsWithABuiltinReceive) {
	StreamActions actions;
	constexpr int kType = kFirstExtensionAction + 3;
	actions.add_type(extension_type(kType));
	ASSERT_NE(actions.row(kType), nullptr);
	EXPECT_EQ(actions.row(kType)->slot(), kBuiltinActionSlots + 3);
	EXPECT_EQ(actions.pair_rule(kType, kHelActionDismiss).function,
			actions.pair_rule(kHelActionDismiss, kHelActionDismiss).function);
	EXPECT_EQ(&actions.pair_rule(kType, kHelActionRecvToBuffer), &kMismatchRule);

	actions.add_pair(kType, kHelActionRecvToBuffer, pair_nothing);
	EXPECT_EQ(actions.pair_rule(kType, kHelActionRecvToBuffer).function, pair_nothing);
	EXPECT_FALSE(actions.pair_rule(kType, kHelActionRecvToBuffer).swapped);
	EXPECT_TRUE(actions.pair_rule(kHelActionRecvToBuffer, kType).swapped);
	// The built-in pairs of that receive stay as they were.
	EXPECT_NE(actions.pair_rule(kHelActionSendFromBuffer, kHelActionRecvToBuffer).function,
			pair_nothing);
	EXPECT_EQ(&actions.pair_rule(kType, kType), &kMismatchRule);
}

TEST(StreamActionRegistry, RefusesPairsThatExistWithDismissOrWithUnregisteredTypes) {
	StreamActions actions;
	constexpr int kType = kFirstExtensionAction;
	actions.add_type(extension_type(kType));
	actions.add_pair(kType, kType, pair_nothing);
	EXPECT_EQ(actions.pair_rule(kType, kType).function, pair_nothing);
	EXPECT_FALSE(actions.pair_rule(kType, kType).swapped);
	EXPECT_THROW(actions.add_pair(kType, kType, pair_nothing), std::invalid_argument);
	EXPECT_THROW(actions.add_pair(kHelActionRecvInline, kHelActionSendFromBuffer, pair_nothing),
			std::invalid_argument);
	EXPECT_THROW(actions.add_pair(kType, kHelActionDismiss, pair_nothing), std::invalid_argument);
	EXPECT_THROW(actions.add_pair(kType, kFirstExtensionAction + 1, pair_nothing),
			std::invalid_argument);
	EXPECT_THROW(actions.add_pair(kType, kHelActionRecvInline, nullptr), std::invalid_argument);
}
