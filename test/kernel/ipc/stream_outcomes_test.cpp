// Tests of streams (src/kernel/ipc/stream.cpp) against hel-reference.md section 3, continued from
// stream_test.cpp: credentials, dismiss, mismatches, helShutdownLane, the end of a lane when
// its last handle closes, the layout of the one completion element per exchange, and
// submission errors on the SQ and the legacy helSubmitAsync path.
#include "stream_support.hpp"

using namespace helsim::stream_test;

// ---------------------------------------------------------------- credentials

TEST_F(StreamCredentials, ImbueThisThreadGivesTheSubmittersCredentials) {
	auto [a, b] = stream();
	auto imbue = submit(a, {imbue_act(kHelThisThread)});
	auto extract = submit(b, ipc::actions(ipc::extract_credentials()));
	EXPECT_EQ(take_errors(imbue), Errors{kHelErrNone});
	auto results = take(extract);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].credentials, credentials_of(kHelThisThread));
	// The usual form: credentials travel in an offer's ancillary list.
	auto off = submit(a, ipc::actions(ipc::offer(ipc::imbue_credentials())));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::extract_credentials())));
	EXPECT_EQ(take_errors(off), (Errors{kHelErrNone, kHelErrNone}));
	auto accepted = take(acc);
	ASSERT_EQ(accepted.size(), 2u);
	EXPECT_EQ(accepted[1].error, kHelErrNone);
	EXPECT_EQ(accepted[1].credentials, credentials_of(kHelThisThread));
	close(accepted[0].handle);
}

TEST_F(StreamCredentials, ImbueAThreadHandleGivesThatThreadsCredentials) {
	auto [a, b] = stream();
	HelHandle thread = kHelNullHandle;
	ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					  reinterpret_cast<void *>(&idle_entry), nullptr, 0, &thread),
			kHelErrNone);
	Credentials expected = credentials_of(thread);
	EXPECT_NE(expected, credentials_of(kHelThisThread));
	auto imbue = submit(a, {imbue_act(thread)});
	close(thread); // captured at submission
	auto extract = submit(b, ipc::actions(ipc::extract_credentials()));
	EXPECT_EQ(take_errors(imbue), Errors{kHelErrNone});
	auto results = take(extract);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].credentials, expected);
}

TEST_F(StreamCredentials, ImbueATokenGivesTheTokensCredentials) {
	auto [a, b] = stream();
	HelHandle t1, t2;
	ASSERT_EQ(helCreateToken(&t1), kHelErrNone);
	ASSERT_EQ(helCreateToken(&t2), kHelErrNone);
	std::vector<Credentials> got;
	for (HelHandle t : {t1, t1, t2}) {
		auto imbue = submit(a, {imbue_act(t)});
		auto extract = submit(b, ipc::actions(ipc::extract_credentials()));
		EXPECT_EQ(take_errors(imbue), Errors{kHelErrNone});
		auto results = take(extract);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		got.push_back(results[0].credentials);
	}
	EXPECT_EQ(got[0], got[1]) << "one token, two different credentials";
	EXPECT_NE(got[0], got[2]) << "two tokens share credentials";
	EXPECT_NE(got[0], credentials_of(kHelThisThread));
	EXPECT_NE(got[0], Credentials{});
}

TEST_F(StreamCredentials, ImbueALaneGivesItsStreamsCredentials) {
	auto [a, b] = stream();
	auto [c, d] = stream(true);
	auto imbue = submit(a, {imbue_act(d)});
	auto extract = submit(b, ipc::actions(ipc::extract_credentials()));
	EXPECT_EQ(take_errors(imbue), Errors{kHelErrNone});
	auto results = take(extract);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].credentials, credentials_of(c));
}

TEST_P(StreamSubmit, ImbueOfAnUnsuitableHandleIsASubmissionError) {
	auto [a, b] = stream();
	auto [c, d] = stream(false);
	EXPECT_EQ(submission_error(a, {imbue_act(c)}, GetParam()), kHelErrIllegalArgs)
			<< "a lane of a stream without credentials";
	EXPECT_EQ(submission_error(a, {imbue_act(dispatcher_->queue())}, GetParam()),
			kHelErrBadDescriptor);
	EXPECT_EQ(submission_error(a, {imbue_act(123456)}, GetParam()), kHelErrNoDescriptor);
	EXPECT_EQ(submission_error(a, {push_act(123456, kHelRightsMax)}, GetParam()),
			kHelErrNoDescriptor);
	expect_lane_works(a, b);
}

// ---------------------------------------------------------------- dismiss

TEST_F(StreamDismiss, TheDismisserSucceedsAndTheOtherSideIsDismissed) {
	auto [a, b] = stream();
	auto d1 = submit(a, ipc::actions(ipc::dismiss()));
	auto r1 = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(d1), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(r1), Errors{kHelErrDismissed});
	// The other order, and other kinds of victims.
	auto data = pattern(10000, 3);
	for (HelAction victim : {send_act(data.data(), data.size()), pull_act(0),
				 act(kHelActionExtractCredentials), imbue_act(kHelThisThread)}) {
		auto v = submit(a, {victim});
		auto d = submit(b, ipc::actions(ipc::dismiss()));
		EXPECT_EQ(take_errors(v), Errors{kHelErrDismissed}) << "type " << victim.type;
		EXPECT_EQ(take_errors(d), Errors{kHelErrNone});
	}
}

TEST_F(StreamDismiss, BothDismissingAreBothDismissed) {
	auto [a, b] = stream();
	auto d1 = submit(a, ipc::actions(ipc::dismiss()));
	auto d2 = submit(b, ipc::actions(ipc::dismiss()));
	EXPECT_EQ(take_errors(d1), Errors{kHelErrDismissed});
	EXPECT_EQ(take_errors(d2), Errors{kHelErrDismissed});
}

TEST_F(StreamDismiss, ADismissedOfferOrAcceptTakesItsAncillaryListAlong) {
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer(ipc::send_buffer("x"), ipc::recv_inline())));
	auto d1 = submit(b, ipc::actions(ipc::dismiss()));
	EXPECT_EQ(take_errors(off), (Errors{kHelErrDismissed, kHelErrDismissed, kHelErrDismissed}));
	EXPECT_EQ(take_errors(d1), Errors{kHelErrNone});
	auto d2 = submit(a, ipc::actions(ipc::dismiss()));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline(), ipc::pull_descriptor())));
	EXPECT_EQ(take_errors(d2), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(acc), (Errors{kHelErrDismissed, kHelErrDismissed, kHelErrDismissed}));
	expect_lane_works(a, b);
}

// ---------------------------------------------------------------- mismatch

TEST_F(StreamMismatch, IncompatiblePairsFailBothSides) {
	auto [a, b] = stream();
	char buffer[64];
	HelAction send = send_act("abc", 3), recv = act(kHelActionRecvInline),
			  recv_buf = recv_buffer_act(buffer, sizeof(buffer)), push = push_act(a, kHelRightsMax),
			  pull = pull_act(0), offer = act(kHelActionOffer), accept = act(kHelActionAccept),
			  imbue = imbue_act(kHelThisThread), extract = act(kHelActionExtractCredentials);
	struct Pair {
		const char *name;
		HelAction x, y;
	} pairs[] = {
			{"send/pull", send, pull},
			{"send/send", send, send},
			{"recv/recv", recv, recv_buf},
			{"send/extract", send, extract},
			{"push/recv", push, recv_buf},
			{"push/push", push, push},
			{"pull/pull", pull, pull},
			{"offer/recv", offer, recv},
			{"offer/offer", offer, offer},
			{"accept/accept", accept, accept},
			{"accept/send", accept, send},
			{"imbue/recv", imbue, recv},
			{"imbue/imbue", imbue, imbue},
			{"extract/pull", extract, pull},
			{"extract/extract", extract, extract},
			{"imbue/pull", imbue, pull},
	};
	for (const Pair &p : pairs) {
		SCOPED_TRACE(p.name);
		auto x = submit(a, {p.x});
		auto y = submit(b, {p.y});
		EXPECT_EQ(take_errors(x), Errors{kHelErrTransmissionMismatch});
		EXPECT_EQ(take_errors(y), Errors{kHelErrTransmissionMismatch});
		// ... and the other way round.
		auto y2 = submit(a, {p.y});
		auto x2 = submit(b, {p.x});
		EXPECT_EQ(take_errors(y2), Errors{kHelErrTransmissionMismatch});
		EXPECT_EQ(take_errors(x2), Errors{kHelErrTransmissionMismatch});
	}
	expect_lane_works(a, b);
}

TEST_F(StreamMismatch, AMismatchedOfferOrAcceptCompletesItsAncillaryList) {
	// thor leaves these lists pending; helsim fails them too so that the exchange completes
	// (docs/fidelity.md).
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer(ipc::send_buffer("x"), ipc::recv_inline())));
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(off),
			(Errors{kHelErrTransmissionMismatch, kHelErrTransmissionMismatch,
					kHelErrTransmissionMismatch}));
	EXPECT_EQ(take_errors(r), Errors{kHelErrTransmissionMismatch});
	auto s = submit(a, ipc::actions(ipc::send_buffer("y")));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline(), ipc::send_buffer("z"))));
	EXPECT_EQ(take_errors(s), Errors{kHelErrTransmissionMismatch});
	EXPECT_EQ(take_errors(acc),
			(Errors{kHelErrTransmissionMismatch, kHelErrTransmissionMismatch,
					kHelErrTransmissionMismatch}));
	// Offer against offer, both with lists.
	auto o1 = submit(a, ipc::actions(ipc::offer(ipc::recv_inline())));
	auto o2 = submit(b, ipc::actions(ipc::offer(ipc::send_buffer("w"))));
	EXPECT_EQ(take_errors(o1), (Errors{kHelErrTransmissionMismatch, kHelErrTransmissionMismatch}));
	EXPECT_EQ(take_errors(o2), (Errors{kHelErrTransmissionMismatch, kHelErrTransmissionMismatch}));
	expect_lane_works(a, b);
}

TEST_F(StreamMismatch, RootChainsPairItemByItem) {
	auto [a, b] = stream();
	// [send, send, pull] against [recv, pull, recv]: 1st pairs, 2nd and 3rd mismatch.
	auto x = submit(a,
			{send_act("one", 3, kHelItemChain), send_act("two", 3, kHelItemChain), pull_act(0)});
	auto y = submit(b,
			{act(kHelActionRecvInline, kHelItemChain), pull_act(0, kHelItemChain),
					act(kHelActionRecvInline)});
	EXPECT_EQ(take_errors(x),
			(Errors{kHelErrNone, kHelErrTransmissionMismatch, kHelErrTransmissionMismatch}));
	auto results = take(y);
	EXPECT_EQ(errors_of(results),
			(Errors{kHelErrNone, kHelErrTransmissionMismatch, kHelErrTransmissionMismatch}));
	ASSERT_EQ(results.size(), 3u);
	EXPECT_EQ(results[0].data, "one");
}

// ---------------------------------------------------------------- helShutdownLane

TEST_F(StreamShutdown, PendingItemsOnTheLaneGetLaneShutdownAndOnThePeerEndOfLane) {
	auto [a, b] = stream();
	auto r = submit(a, ipc::actions(ipc::recv_inline()));
	auto off = submit(a, ipc::actions(ipc::offer(ipc::send_buffer("x"), ipc::recv_inline())));
	EXPECT_FALSE(done(r));
	EXPECT_FALSE(done(off));
	EXPECT_EQ(helShutdownLane(a), kHelErrNone);
	EXPECT_EQ(take_errors(r), Errors{kHelErrLaneShutdown});
	EXPECT_EQ(take_errors(off),
			(Errors{kHelErrLaneShutdown, kHelErrLaneShutdown, kHelErrLaneShutdown}));
	// Later submissions: LaneShutdown on the lane, EndOfLane on its peer.
	auto later_a = submit(a, ipc::actions(ipc::send_buffer("late")));
	auto later_b = submit(b, ipc::actions(ipc::accept(ipc::recv_inline())));
	EXPECT_EQ(take_errors(later_a), Errors{kHelErrLaneShutdown});
	EXPECT_EQ(take_errors(later_b), (Errors{kHelErrEndOfLane, kHelErrEndOfLane}));
	// The legacy path sees the same.
	auto legacy_a = submit(a, ipc::actions(ipc::dismiss()), Path::legacy);
	auto legacy_b = submit(b, ipc::actions(ipc::dismiss()), Path::legacy);
	EXPECT_EQ(take_errors(legacy_a), Errors{kHelErrLaneShutdown});
	EXPECT_EQ(take_errors(legacy_b), Errors{kHelErrEndOfLane});
}

TEST_F(StreamShutdown, PendingItemsOnThePeerGetEndOfLane) {
	auto [a, b] = stream();
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline(), ipc::send_buffer("y"))));
	EXPECT_EQ(helShutdownLane(a), kHelErrNone);
	EXPECT_EQ(take_errors(r), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(acc), (Errors{kHelErrEndOfLane, kHelErrEndOfLane, kHelErrEndOfLane}));
	auto later_b = submit(b, ipc::actions(ipc::recv_inline()));
	auto later_a = submit(a, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(later_b), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(later_a), Errors{kHelErrLaneShutdown});
	// Shutting down the peer as well changes nothing for a: its own shutdown comes first.
	EXPECT_EQ(helShutdownLane(b), kHelErrNone);
	auto again_a = submit(a, ipc::actions(ipc::recv_inline()));
	auto again_b = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(again_a), Errors{kHelErrLaneShutdown});
	EXPECT_EQ(take_errors(again_b), Errors{kHelErrLaneShutdown});
}

TEST_F(StreamShutdown, ShuttingDownAChildLaneLeavesTheParentAlone) {
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer_want_lane()));
	auto acc = submit(b, ipc::actions(ipc::accept()));
	HelHandle mine = take(off).at(0).handle, theirs = take(acc).at(0).handle;
	auto pending = submit(theirs, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(helShutdownLane(mine), kHelErrNone);
	EXPECT_EQ(take_errors(pending), Errors{kHelErrEndOfLane});
	expect_lane_works(a, b);
	close(mine);
	close(theirs);
}

TEST_F(StreamShutdown, NeedsManageAndALane) {
	auto [a, b] = stream();
	HelHandle invoke_only = narrowed(a, kHelRightInvoke);
	EXPECT_EQ(helShutdownLane(invoke_only), kHelErrBadRights);
	EXPECT_EQ(helShutdownLane(dispatcher_->queue()), kHelErrBadDescriptor);
	EXPECT_EQ(helShutdownLane(987654), kHelErrNoDescriptor);
	// Nothing was shut down.
	expect_lane_works(invoke_only, b);
	HelHandle manage_only = narrowed(b, kHelRightManage);
	EXPECT_EQ(helShutdownLane(manage_only), kHelErrNone);
	auto later = submit(a, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(later), Errors{kHelErrEndOfLane});
}

// ---------------------------------------------------------------- closing lanes

TEST_F(StreamClose, ClosingTheLastHandleEndsThePeer) {
	auto [a, b] = stream();
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline())));
	close(a);
	EXPECT_EQ(take_errors(r), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(acc), (Errors{kHelErrEndOfLane, kHelErrEndOfLane}));
	auto later = submit(b, ipc::actions(ipc::send_buffer("anyone?")));
	auto later_legacy = submit(b, ipc::actions(ipc::send_buffer("anyone?")), Path::legacy);
	EXPECT_EQ(take_errors(later), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(later_legacy), Errors{kHelErrEndOfLane});
}

TEST_F(StreamClose, AnotherHandleKeepsTheLaneAlive) {
	auto [a, b] = stream();
	HelHandle copy = narrowed(a, kLaneRights);
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	close(a);
	EXPECT_FALSE(done(r));
	auto s = submit(copy, ipc::actions(ipc::send_buffer("via the copy")));
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].data, "via the copy");
	close(copy);
	auto later = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(later), Errors{kHelErrEndOfLane});
}

TEST_F(StreamClose, PendingItemsKeepTheirLaneAlive) {
	auto [a, b] = stream();
	auto r = submit(a, ipc::actions(ipc::recv_inline()));
	close(a); // the pending receive still references lane a
	EXPECT_FALSE(done(r));
	auto s = submit(b, ipc::actions(ipc::send_buffer("late but delivered")));
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].data, "late but delivered");
	// Once that exchange is gone, lane a is.
	auto later = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(later), Errors{kHelErrEndOfLane});
}

TEST_F(StreamClose, ClosingBothEndsWithPendingItemsCompletesThem) {
	auto [a, b] = stream();
	auto r = submit(a, ipc::actions(ipc::recv_inline()));
	auto off = submit(a, ipc::actions(ipc::offer(ipc::recv_inline())));
	close(a);
	EXPECT_FALSE(done(r));
	close(b);
	EXPECT_EQ(take_errors(r), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(off), (Errors{kHelErrEndOfLane, kHelErrEndOfLane}));
}

// ---------------------------------------------------------------- completion layout

TEST_F(StreamCompletion, AllResultsOfAnExchangeArriveAsOneElementInActionOrder) {
	auto [a, b] = stream();
	auto [c, d] = stream(true);
	char buffer[32] = {};
	// Root chain on a: RecvInline, RecvToBuffer, Extract, Pull, then an offer whose
	// ancillary list is [Send, RecvInline].
	const HelAction mine[] = {
			act(kHelActionRecvInline, kHelItemChain),
			recv_buffer_act(buffer, sizeof(buffer), kHelItemChain),
			act(kHelActionExtractCredentials, kHelItemChain),
			pull_act(kHelRightInvoke, kHelItemChain),
			act(kHelActionOffer, kHelItemAncillary | kHelItemWantLane),
			send_act("abc", 3, kHelItemChain),
			act(kHelActionRecvInline),
	};
	auto x = submit(a, mine);
	const HelAction first[] = {
			send_act("hello", 5, kHelItemChain),
			send_act("0123456789", 10, kHelItemChain),
			imbue_act(d),
	};
	auto y1 = submit(b, first);
	EXPECT_EQ(take_errors(y1), (Errors{kHelErrNone, kHelErrNone, kHelErrNone}));
	EXPECT_FALSE(done(x)) << "the exchange completed before all its items did";
	const HelAction second[] = {
			push_act(c, kHelRightsMax, kHelItemChain),
			act(kHelActionAccept, kHelItemAncillary),
			act(kHelActionRecvInline, kHelItemChain),
			send_act("reply!", 6),
	};
	auto y2 = submit(b, second);
	auto theirs = take(y2);
	EXPECT_EQ(errors_of(theirs), (Errors{kHelErrNone, kHelErrNone, kHelErrNone, kHelErrNone}));
	ASSERT_EQ(theirs.size(), 4u);
	EXPECT_EQ(theirs[2].data, "abc");
	ASSERT_TRUE(done(x));

	// The raw element, result by result.
	std::vector<std::byte> bytes = raw(x);
	auto mine_results = take(x);
	ASSERT_EQ(mine_results.size(), 7u);
	ASSERT_EQ(bytes.size(), 24u + 16 + 24 + 16 + 16 + 8 + 16 + 8);
	auto at = [&](std::size_t offset, auto &out) {
		std::memcpy(&out, bytes.data() + offset, sizeof(out));
	};
	HelInlineResultNoFlex inline1;
	at(0, inline1);
	EXPECT_EQ(inline1.error, kHelErrNone);
	EXPECT_EQ(inline1.length, 5u);
	EXPECT_EQ(std::memcmp(bytes.data() + 16, "hello", 5), 0) << "inline data follows the header";
	HelLengthResult length;
	at(24, length); // 16 + 5 bytes padded to 8
	EXPECT_EQ(length.error, kHelErrNone);
	EXPECT_EQ(length.length, 10u);
	EXPECT_EQ(std::memcmp(buffer, "0123456789", 10), 0);
	HelCredentialsResult creds;
	at(40, creds);
	EXPECT_EQ(creds.error, kHelErrNone);
	EXPECT_EQ(std::memcmp(creds.credentials, credentials_of(c).data(), 16), 0);
	HelHandleResult pulled;
	at(64, pulled);
	EXPECT_EQ(pulled.error, kHelErrNone);
	EXPECT_EQ(info_of(pulled.handle).type, kHelDescLane);
	EXPECT_EQ(info_of(pulled.handle).rights, kLaneRights);
	HelHandleResult offered;
	at(80, offered);
	EXPECT_EQ(offered.error, kHelErrNone);
	EXPECT_EQ(info_of(offered.handle).type, kHelDescLane);
	HelSimpleResult sent;
	at(96, sent);
	EXPECT_EQ(sent.error, kHelErrNone);
	HelInlineResultNoFlex inline2;
	at(104, inline2);
	EXPECT_EQ(inline2.error, kHelErrNone);
	EXPECT_EQ(inline2.length, 6u);
	EXPECT_EQ(std::memcmp(bytes.data() + 120, "reply!", 6), 0);
	// The parsed view agrees.
	EXPECT_EQ(mine_results[0].data, "hello");
	EXPECT_EQ(mine_results[6].data, "reply!");
	EXPECT_EQ(mine_results[4].handle, offered.handle);

	close(pulled.handle);
	close(offered.handle);
	close(theirs[1].handle);
}

TEST_F(StreamCompletion, TheLegacyPathProducesTheSameElement) {
	std::vector<std::vector<std::byte>> elements;
	for (Path path : {Path::sq, Path::legacy}) {
		auto [a, b] = stream(true);
		char buffer[16] = {};
		const HelAction mine[] = {
				act(kHelActionRecvInline, kHelItemChain),
				act(kHelActionExtractCredentials, kHelItemChain),
				recv_buffer_act(buffer, 4, kHelItemChain),
				act(kHelActionDismiss, kHelItemChain),
				act(kHelActionRecvInline),
		};
		const HelAction theirs[] = {
				send_act("legacy?", 7, kHelItemChain),
				imbue_act(kHelThisThread, kHelItemChain),
				send_act("too long", 8, kHelItemChain),
				act(kHelActionRecvInline, kHelItemChain),
				act(kHelActionDismiss),
		};
		auto x = submit(a, mine, path);
		auto y = submit(b, theirs, path);
		EXPECT_EQ(take_errors(y),
				(Errors{kHelErrNone, kHelErrNone, kHelErrBufferTooSmall, kHelErrDismissed,
						kHelErrNone}));
		elements.push_back(raw(x));
		EXPECT_EQ(take_errors(x),
				(Errors{kHelErrNone, kHelErrNone, kHelErrBufferTooSmall, kHelErrNone,
						kHelErrDismissed}));
		close(a);
		close(b);
	}
	EXPECT_EQ(elements[0], elements[1]);
}

// ---------------------------------------------------------------- submission errors

TEST_P(StreamSubmit, MalformedActionTreesAreIllegalArgs) {
	auto [a, b] = stream();
	const Path path = GetParam();
	struct Case {
		const char *name;
		std::vector<HelAction> actions;
	} cases[] = {
			{"unclosed root chain", {send_act("x", 1, kHelItemChain)}},
			{"unclosed chain after several",
					{send_act("x", 1, kHelItemChain), send_act("y", 1, kHelItemChain)}},
			{"item after the root list closed", {send_act("x", 1), send_act("y", 1)}},
			{"ancillary on a send", {send_act("x", 1, kHelItemAncillary), send_act("y", 1)}},
			{"ancillary on a receive",
					{act(kHelActionRecvInline, kHelItemAncillary), act(kHelActionRecvInline)}},
			{"ancillary on dismiss",
					{act(kHelActionDismiss, kHelItemAncillary), act(kHelActionDismiss)}},
			{"want-lane on accept", {act(kHelActionAccept, kHelItemWantLane)}},
			{"want-lane on send", {send_act("x", 1, kHelItemWantLane)}},
			{"stray flag 4", {send_act("x", 1, 4)}},
			{"stray flag 1<<8", {act(kHelActionOffer, 1u << 8)}},
			{"stray flag 1<<31", {act(kHelActionRecvInline, 1u << 31)}},
			{"unknown type 0", {act(0)}},
			{"unknown type 12", {act(12)}},
			{"unknown type -1", {act(-1)}},
			{"unknown type in an ancillary list",
					{act(kHelActionOffer, kHelItemAncillary), act(100)}},
			{"offer with an empty ancillary list", {act(kHelActionOffer, kHelItemAncillary)}},
			{"unclosed ancillary list",
					{act(kHelActionOffer, kHelItemAncillary), send_act("x", 1, kHelItemChain)}},
			{"ancillary list closes the root too early",
					{act(kHelActionOffer, kHelItemAncillary), send_act("x", 1), send_act("y", 1)}},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.name);
		EXPECT_EQ(submission_error(a, c.actions, path), kHelErrIllegalArgs);
	}
	// count 0
	EXPECT_EQ(submission_error(a, std::span<const HelAction>{}, path), kHelErrIllegalArgs);
	// None of them reached the stream.
	expect_lane_works(a, b);
	expect_lane_works(b, a);
}

TEST_P(StreamSubmit, TheLaneHandleMustBeALaneWithInvoke) {
	auto [a, b] = stream();
	const Path path = GetParam();
	auto one = ipc::actions(ipc::recv_inline());
	EXPECT_EQ(submission_error(424242, one, path), kHelErrNoDescriptor);
	EXPECT_EQ(submission_error(kHelNullHandle, one, path), kHelErrNoDescriptor);
	EXPECT_EQ(submission_error(dispatcher_->queue(), one, path), kHelErrBadDescriptor);
	HelHandle token;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	EXPECT_EQ(submission_error(token, one, path), kHelErrBadDescriptor);
	HelHandle manage_only = narrowed(a, kHelRightManage);
	EXPECT_EQ(submission_error(manage_only, one, path), kHelErrBadRights);
	// The lane checks come before the tree checks.
	EXPECT_EQ(submission_error(manage_only, {act(99)}, path), kHelErrBadRights);
	EXPECT_EQ(submission_error(dispatcher_->queue(), {act(99)}, path), kHelErrBadDescriptor);
	expect_lane_works(a, b);
}

// The submission's lookup hands its lane reference to the packet, or drops it with a refused
// submission: neither leaves one behind, so the lane still breaks with its last handle.
TEST_P(StreamSubmit, NoSubmissionLeavesALaneReferenceBehind) {
	auto [a, b] = stream();
	const Path path = GetParam();
	EXPECT_EQ(submission_error(a, {send_act("x", 1, kHelItemChain)}, path), kHelErrIllegalArgs);
	auto s = submit(a, ipc::actions(ipc::send_buffer("sent")), path);
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(r), Errors{kHelErrNone});
	auto pending = submit(b, ipc::actions(ipc::recv_inline()));
	close(a);
	EXPECT_EQ(take_errors(pending), Errors{kHelErrEndOfLane});
}

TEST_P(StreamSubmit, ResultsMustFitAChunk) {
	auto [a, b] = stream();
	// 4 RecvInlines reserve 4 * (16 + 128) bytes of a 512-byte chunk: too much.
	helsim::Dispatcher small{
			helsim::QueueConfig{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 512}};
	std::vector<HelAction> actions(4, act(kHelActionRecvInline, kHelItemChain));
	actions.back().flags = 0;
	HelError e;
	if (GetParam() == Path::legacy) {
		e = helSubmitAsync(a, actions.data(), actions.size(), small.queue(), 1, 0);
	} else {
		auto payload = sq_payload(a, actions, actions.size());
		small.submit(kHelSubmitExchangeMsgs, 1, std::span<const std::byte>{payload});
		small.flush();
		auto element = small.poll();
		ASSERT_TRUE(element);
		EXPECT_EQ(element->context(), kSubmitErrorContext);
		e = element->error();
	}
	EXPECT_EQ(e, kHelErrQueueTooSmall);
	EXPECT_FALSE(small.poll());
	// Three fit (3 * 144 + 16 <= 512).
	actions.pop_back();
	actions.back().flags = 0;
	if (GetParam() == Path::legacy) {
		EXPECT_EQ(helSubmitAsync(b, actions.data(), actions.size(), small.queue(), 2, 0),
				kHelErrNone);
	} else {
		auto payload = sq_payload(b, actions, actions.size());
		small.submit(kHelSubmitExchangeMsgs, 2, std::span<const std::byte>{payload});
		small.flush();
	}
	EXPECT_FALSE(small.poll());
	HelAction sends[3] = {send_act("1", 1, kHelItemChain), send_act("22", 2, kHelItemChain),
			send_act("333", 3)};
	auto s = submit(a, sends);
	EXPECT_EQ(take_errors(s), (Errors{kHelErrNone, kHelErrNone, kHelErrNone}));
	auto element = small.poll();
	ASSERT_TRUE(element);
	EXPECT_EQ(element->context(), 2u);
	auto results = parse_results(actions, element->payload());
	ASSERT_EQ(results.size(), 3u);
	EXPECT_EQ(results[2].data, "333");
}

INSTANTIATE_TEST_SUITE_P(StreamPaths, StreamSubmit, ::testing::Values(Path::sq, Path::legacy),
		path_name);

TEST_F(StreamSubmitArgs, SqPayloadsMustHoldTheirActions) {
	auto [a, b] = stream();
	auto one = ipc::actions(ipc::recv_inline());
	auto full = sq_payload(a, one, 1);
	// Shorter than HelSqExchangeMsgs.
	EXPECT_EQ(raw_sq_error(std::span{full}.first(sizeof(HelSqExchangeMsgs) - 1)),
			kHelErrBufferTooSmall);
	EXPECT_EQ(raw_sq_error(std::span<const std::byte>{}), kHelErrBufferTooSmall);
	// The header promises more actions than follow.
	EXPECT_EQ(raw_sq_error(sq_payload(a, one, 2)), kHelErrBufferTooSmall);
	EXPECT_EQ(raw_sq_error(std::span{full}.first(full.size() - 1)), kHelErrBufferTooSmall);
	EXPECT_EQ(raw_sq_error(sq_payload(a, {}, 1)), kHelErrBufferTooSmall);
	// flags must be 0; count 0 is illegal.
	EXPECT_EQ(raw_sq_error(sq_payload(a, one, 1, 1)), kHelErrIllegalArgs);
	EXPECT_EQ(raw_sq_error(sq_payload(a, one, 0)), kHelErrIllegalArgs);
	expect_lane_works(b, a);
}

TEST_F(StreamSubmitArgs, LegacyArgumentsAreChecked) {
	auto [a, b] = stream();
	auto one = ipc::actions(ipc::send_buffer("x"));
	auto q = dispatcher_->queue();
	EXPECT_EQ(helSubmitAsync(a, one.data(), 1, b, 1, 0), kHelErrBadDescriptor)
			<< "a lane as the queue";
	EXPECT_EQ(helSubmitAsync(a, one.data(), 1, 777777, 1, 0), kHelErrNoDescriptor);
	EXPECT_EQ(helSubmitAsync(a, one.data(), 1, q, 1, 1), kHelErrIllegalArgs) << "flags != 0";
	EXPECT_EQ(helSubmitAsync(a, one.data(), 0, q, 1, 0), kHelErrIllegalArgs) << "count 0";
	EXPECT_EQ(helSubmitAsync(a, reinterpret_cast<const HelAction *>(16), 1, q, 1, 0), kHelErrFault);
	EXPECT_EQ(helSubmitAsync(a, nullptr, 1, q, 1, 0), kHelErrFault);
	HelHandle no_invoke = narrowed(q, kQueueRights & ~kHelRightInvoke);
	EXPECT_EQ(helSubmitAsync(a, one.data(), 1, no_invoke, 1, 0), kHelErrBadRights);
	// None of them completes or reaches the stream.
	pump();
	expect_lane_works(a, b);
}
