// Tests of streams (src/kernel/ipc/stream.cpp) against hel-reference.md section 3:
// helCreateStream and lane credentials, offer/accept, send/receive in every form and push/pull.
// The action outcomes that end exchanges (credentials, dismiss, mismatch, shutdown, closing,
// the completion layout and submission errors) are in stream_outcomes_test.cpp.
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include <helsim/extension.hpp>

#include "stream_support.hpp"

using namespace helsim::stream_test;

// ---------------------------------------------------------------- helCreateStream

TEST_F(StreamCreate, LanesAreLaneDescriptorsWithInvokeAndManage) {
	auto [a, b] = stream();
	EXPECT_NE(a, b);
	EXPECT_GT(a, 0);
	EXPECT_GT(b, 0);
	for (HelHandle h : {a, b}) {
		auto info = info_of(h);
		EXPECT_EQ(info.type, kHelDescLane);
		EXPECT_EQ(info.rights, kLaneRights);
	}
}

TEST_F(StreamCreate, CredentialsAreTheSameSixteenBytesOnBothLanes) {
	auto [a, b] = stream(true);
	char raw[20];
	std::memset(raw, 0x5a, sizeof(raw));
	ASSERT_EQ(helGetCredentials(a, 0, raw), kHelErrNone);
	for (int i = 16; i < 20; ++i)
		EXPECT_EQ(raw[i], 0x5a) << "helGetCredentials wrote past 16 bytes";
	Credentials ca{};
	std::memcpy(ca.data(), raw, 16);
	EXPECT_EQ(credentials_of(b), ca);
	EXPECT_NE(ca, Credentials{}) << "16 random bytes, all zero";
	EXPECT_NE(ca, credentials_of(kHelThisThread));
	auto [c, d] = stream(true);
	EXPECT_NE(credentials_of(c), ca) << "two streams share credentials";
	EXPECT_EQ(credentials_of(d), credentials_of(c));
	EXPECT_EQ(helGetCredentials(a, 1, raw), kHelErrIllegalArgs) << "flags must be 0";
}

TEST_F(StreamCreate, WithoutCredentialsGetCredentialsIsIllegalArgs) {
	auto [a, b] = stream(false);
	for (HelHandle h : {a, b}) {
		char raw[16];
		std::memset(raw, 0x5a, sizeof(raw));
		EXPECT_EQ(helGetCredentials(h, 0, raw), kHelErrIllegalArgs);
		for (char c : raw)
			EXPECT_EQ(c, 0x5a) << "a failed helGetCredentials wrote its buffer";
	}
}

// ---------------------------------------------------------------- offer / accept

TEST_F(StreamOfferAccept, WantLaneGivesTheOffererItsEndOfTheChildStream) {
	auto [a, b] = stream();
	// The accept may come first: it waits for the offer.
	auto acc = submit(b, ipc::actions(ipc::accept()));
	EXPECT_FALSE(done(acc));
	auto off = submit(a, ipc::actions(ipc::offer_want_lane()));
	auto offered = take(off);
	auto accepted = take(acc);
	ASSERT_EQ(offered.size(), 1u);
	ASSERT_EQ(accepted.size(), 1u);
	EXPECT_EQ(offered[0].error, kHelErrNone);
	EXPECT_EQ(accepted[0].error, kHelErrNone);
	HelHandle mine = offered[0].handle, theirs = accepted[0].handle;
	for (HelHandle h : {mine, theirs}) {
		EXPECT_NE(h, a);
		EXPECT_NE(h, b);
		EXPECT_EQ(info_of(h).type, kHelDescLane);
		EXPECT_EQ(info_of(h).rights, kLaneRights);
	}
	EXPECT_NE(mine, theirs);
	// The two handles are the two ends of one new stream, in both directions.
	expect_lane_works(mine, theirs, "to the acceptor");
	expect_lane_works(theirs, mine, "to the offerer");
	// The parent stream is unaffected.
	expect_lane_works(a, b);
	close(mine);
	close(theirs);
}

TEST_F(StreamOfferAccept, WithoutWantLaneTheOfferReturnsNoHandle) {
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer()));
	auto acc = submit(b, ipc::actions(ipc::accept()));
	auto offered = take(off);
	auto accepted = take(acc);
	ASSERT_EQ(offered.size(), 1u);
	EXPECT_EQ(offered[0].error, kHelErrNone);
	EXPECT_EQ(offered[0].handle, kHelNullHandle);
	ASSERT_EQ(accepted.size(), 1u);
	EXPECT_EQ(accepted[0].error, kHelErrNone);
	EXPECT_EQ(info_of(accepted[0].handle).type, kHelDescLane);
	// Nobody holds the offer's end: the acceptor's end is already at its end.
	auto late = submit(accepted[0].handle, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(late), Errors{kHelErrEndOfLane});
	close(accepted[0].handle);
}

TEST_F(StreamOfferAccept, AcceptorGetsEndOfLaneOnceTheOffersExchangeCompleted) {
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer(ipc::send_buffer("request"), ipc::recv_inline())));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline())));
	auto accepted = take(acc);
	ASSERT_EQ(accepted.size(), 2u);
	EXPECT_EQ(errors_of(accepted), (Errors{kHelErrNone, kHelErrNone}));
	EXPECT_EQ(accepted[1].data, "request");
	HelHandle conversation = accepted[0].handle;
	// The offer's exchange still waits for the reply, so its end of the child stream lives.
	EXPECT_FALSE(done(off));
	auto reply = submit(conversation, ipc::actions(ipc::send_buffer("reply")));
	EXPECT_EQ(take_errors(reply), Errors{kHelErrNone});
	auto offered = take(off);
	ASSERT_EQ(offered.size(), 3u);
	EXPECT_EQ(errors_of(offered), (Errors{kHelErrNone, kHelErrNone, kHelErrNone}));
	EXPECT_EQ(offered[2].data, "reply");
	// Now the offer's exchange is gone and with it the only reference to its end.
	auto late_recv = submit(conversation, ipc::actions(ipc::recv_inline()));
	auto late_send = submit(conversation, ipc::actions(ipc::send_buffer("anyone?")));
	EXPECT_EQ(take_errors(late_recv), Errors{kHelErrEndOfLane});
	EXPECT_EQ(take_errors(late_send), Errors{kHelErrEndOfLane});
	close(conversation);
}

TEST_F(StreamOfferAccept, AcceptorsSurplusItemsFailWhenTheOfferCompletes) {
	auto [a, b] = stream();
	auto off = submit(a, ipc::actions(ipc::offer(ipc::send_buffer("only one"))));
	auto acc = submit(b, ipc::actions(ipc::accept(ipc::recv_inline(), ipc::recv_inline())));
	EXPECT_EQ(take_errors(off), (Errors{kHelErrNone, kHelErrNone}));
	auto accepted = take(acc);
	ASSERT_EQ(accepted.size(), 3u);
	EXPECT_EQ(errors_of(accepted), (Errors{kHelErrNone, kHelErrNone, kHelErrEndOfLane}));
	EXPECT_EQ(accepted[1].data, "only one");
	close(accepted[0].handle);
}

TEST_F(StreamOfferAccept, OffersPairWithAcceptsInSubmissionOrder) {
	auto [a, b] = stream();
	std::vector<std::uintptr_t> offers, accepts;
	const char *texts[] = {"first", "second", "third"};
	for (const char *t : texts)
		offers.push_back(submit(a, ipc::actions(ipc::offer(ipc::send_buffer(t)))));
	for (int i = 0; i < 3; ++i)
		accepts.push_back(submit(b, ipc::actions(ipc::accept(ipc::recv_inline()))));
	for (int i = 0; i < 3; ++i) {
		EXPECT_EQ(take_errors(offers[i]), (Errors{kHelErrNone, kHelErrNone}));
		auto accepted = take(accepts[i]);
		ASSERT_EQ(accepted.size(), 2u);
		EXPECT_EQ(accepted[1].data, texts[i]);
		close(accepted[0].handle);
	}
}

TEST_F(StreamOfferAccept, AncillaryListsNestOnGrandchildStreams) {
	auto [a, b] = stream();
	auto off = submit(a,
			ipc::actions(
					ipc::offer(ipc::offer(ipc::send_buffer("deep")), ipc::send_buffer("shallow"))));
	auto acc = submit(b,
			ipc::actions(ipc::accept(ipc::accept(ipc::recv_inline()), ipc::recv_inline())));
	EXPECT_EQ(take_errors(off), (Errors{kHelErrNone, kHelErrNone, kHelErrNone, kHelErrNone}));
	auto accepted = take(acc);
	ASSERT_EQ(accepted.size(), 4u);
	EXPECT_EQ(errors_of(accepted), (Errors{kHelErrNone, kHelErrNone, kHelErrNone, kHelErrNone}));
	EXPECT_EQ(accepted[2].data, "deep");
	EXPECT_EQ(accepted[3].data, "shallow");
	EXPECT_NE(accepted[0].handle, accepted[1].handle);
	EXPECT_EQ(info_of(accepted[1].handle).type, kHelDescLane);
	close(accepted[0].handle);
	close(accepted[1].handle);
}

// ---------------------------------------------------------------- send / receive

TEST_F(StreamSend, SendUpToFourKiBIsCopiedAtSubmission) {
	for (Path path : {Path::sq, Path::legacy}) {
		SCOPED_TRACE(path == Path::sq ? "SQ" : "legacy");
		auto [a, b] = stream();
		for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{4096}}) {
			SCOPED_TRACE(size);
			auto original = pattern(size, static_cast<unsigned>(size));
			auto buffer = original;
			auto s = submit(a, ipc::actions(ipc::send_buffer(buffer.data(), size)), path);
			pump(); // the kernel has seen the submission
			EXPECT_FALSE(done(s));
			std::fill(buffer.begin(), buffer.end(), '\0');
			std::vector<char> received(size + 8, '#');
			auto r = submit(b, ipc::actions(ipc::recv_buffer(received.data(), received.size())),
					path);
			EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
			auto results = take(r);
			ASSERT_EQ(results.size(), 1u);
			EXPECT_EQ(results[0].error, kHelErrNone);
			EXPECT_EQ(results[0].length, size);
			EXPECT_TRUE(std::equal(original.begin(), original.end(), received.begin()))
					<< "the receiver saw the overwritten buffer";
			EXPECT_EQ(received[size], '#') << "wrote past the received length";
		}
	}
}

TEST_F(StreamSend, SendsLargerThanFourKiBStreamIntoRecvToBuffer) {
	auto [a, b] = stream();
	for (std::size_t size : {std::size_t{4097}, std::size_t{65536}, std::size_t{1} << 20}) {
		SCOPED_TRACE(size);
		auto data = pattern(size, 7);
		std::vector<char> received(size, '\0');
		// Either order works: the receiver first for one size, the sender first for the others.
		std::uintptr_t s, r;
		if (size == 65536) {
			r = submit(b, ipc::actions(ipc::recv_buffer(received.data(), size)));
			EXPECT_FALSE(done(r));
			s = submit(a, ipc::actions(ipc::send_buffer(data.data(), size)));
		} else {
			s = submit(a, ipc::actions(ipc::send_buffer(data.data(), size)));
			EXPECT_FALSE(done(s));
			r = submit(b, ipc::actions(ipc::recv_buffer(received.data(), size)));
		}
		EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].length, size);
		EXPECT_TRUE(data == received);
	}
	// A receive buffer larger than the message reports the message's length.
	auto data = pattern(5000, 9);
	std::vector<char> received(6000, '#');
	auto s = submit(a, ipc::actions(ipc::send_buffer(data.data(), data.size())));
	auto r = submit(b, ipc::actions(ipc::recv_buffer(received.data(), received.size())));
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].length, 5000u);
	EXPECT_TRUE(std::equal(data.begin(), data.end(), received.begin()));
	EXPECT_EQ(received[5000], '#');
}

TEST_F(StreamSend, ScatterGatherSendsAnySizeFromSeveralPieces) {
	auto [a, b] = stream();
	auto p1 = pattern(3, 1), p2 = pattern(5000, 2), p3 = pattern(70000, 3), p4 = pattern(1, 4);
	HelSgItem items[] = {{p1.data(), p1.size()}, {nullptr, 0}, {p2.data(), p2.size()},
			{p3.data(), p3.size()}, {p4.data(), p4.size()}};
	std::vector<char> expected;
	for (auto *p : {&p1, &p2, &p3, &p4})
		expected.insert(expected.end(), p->begin(), p->end());
	std::vector<char> received(expected.size(), '\0');
	auto s = submit(a, {sg_act(items, std::size(items))});
	pump();
	// Scatter-gather data is copied at submission whatever its size.
	for (auto *p : {&p1, &p2, &p3, &p4})
		std::fill(p->begin(), p->end(), '\0');
	auto r = submit(b, {recv_buffer_act(received.data(), received.size())});
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].length, expected.size());
	EXPECT_TRUE(received == expected);

	// A few small pieces into RecvInline.
	HelSgItem small[] = {{const_cast<char *>("hel"), 3}, {const_cast<char *>("lo, "), 4},
			{const_cast<char *>("world"), 5}};
	auto s2 = submit(a, {sg_act(small, 3)});
	auto r2 = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(s2), Errors{kHelErrNone});
	auto inline_results = take(r2);
	ASSERT_EQ(inline_results.size(), 1u);
	EXPECT_EQ(inline_results[0].data, "hello, world");

	// Zero pieces is a zero-length message.
	auto s3 = submit(a, {sg_act(small, 0)});
	auto r3 = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(s3), Errors{kHelErrNone});
	auto empty = take(r3);
	ASSERT_EQ(empty.size(), 1u);
	EXPECT_EQ(empty[0].error, kHelErrNone);
	EXPECT_EQ(empty[0].length, 0u);
}

TEST_F(StreamSend, RecvInlineTakesUpTo128BytesIntoTheCompletion) {
	auto [a, b] = stream();
	auto data = pattern(128, 5);
	auto s = submit(a, ipc::actions(ipc::send_buffer(data.data(), 128)));
	auto r = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].length, 128u);
	EXPECT_EQ(results[0].data, std::string(data.begin(), data.end()));
	EXPECT_EQ(raw(r).size(), 16u + 128u);

	// One byte more fails on both sides, whichever side comes first.
	auto big = pattern(129, 6);
	auto s2 = submit(a, ipc::actions(ipc::send_buffer(big.data(), 129)));
	auto r2 = submit(b, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(s2), Errors{kHelErrBufferTooSmall});
	auto failed = take(r2);
	ASSERT_EQ(failed.size(), 1u);
	EXPECT_EQ(failed[0].error, kHelErrBufferTooSmall);
	EXPECT_EQ(failed[0].length, 0u);
	auto r3 = submit(b, ipc::actions(ipc::recv_inline()));
	auto s3 = submit(a, ipc::actions(ipc::send_buffer(big.data(), 129)));
	EXPECT_EQ(take_errors(r3), Errors{kHelErrBufferTooSmall});
	EXPECT_EQ(take_errors(s3), Errors{kHelErrBufferTooSmall});
	// The stream carries on.
	expect_lane_works(a, b);
}

TEST_F(StreamSend, RecvToBufferTooSmallFailsBothSides) {
	auto [a, b] = stream();
	for (std::size_t size : {std::size_t{100}, std::size_t{4096}, std::size_t{5000}}) {
		SCOPED_TRACE(size);
		auto data = pattern(size, 11);
		std::vector<char> received(size, '#');
		auto s = submit(a, ipc::actions(ipc::send_buffer(data.data(), size)));
		auto r = submit(b, ipc::actions(ipc::recv_buffer(received.data(), size - 1)));
		EXPECT_EQ(take_errors(s), Errors{kHelErrBufferTooSmall});
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrBufferTooSmall);
		EXPECT_EQ(results[0].length, 0u);
		EXPECT_EQ(received, std::vector<char>(size, '#')) << "a failed receive wrote its buffer";
	}
	expect_lane_works(b, a);
}

TEST_F(StreamSend, StreamedSendIntoRecvInlineIsBufferTooSmall) {
	// thor lets this through (hel-reference.md section 3); helsim refuses it, docs/fidelity.md.
	auto [a, b] = stream();
	for (std::size_t size : {std::size_t{4097}, std::size_t{100000}}) {
		auto data = pattern(size, 12);
		auto s = submit(a, ipc::actions(ipc::send_buffer(data.data(), size)));
		auto r = submit(b, ipc::actions(ipc::recv_inline()));
		EXPECT_EQ(take_errors(s), Errors{kHelErrBufferTooSmall});
		EXPECT_EQ(take_errors(r), Errors{kHelErrBufferTooSmall});
	}
}

TEST_F(StreamSend, ZeroLengthSendsComplete) {
	auto [a, b] = stream();
	auto s1 = submit(a, {send_act(nullptr, 0)});
	auto r1 = submit(b, ipc::actions(ipc::recv_inline()));
	char buffer[4] = {'#', '#', '#', '#'};
	auto s2 = submit(a, {send_act("ignored", 0)});
	auto r2 = submit(b, {recv_buffer_act(buffer, sizeof(buffer))});
	auto s3 = submit(a, {send_act(nullptr, 0)});
	auto r3 = submit(b, {recv_buffer_act(nullptr, 0)});
	for (auto s : {s1, s2, s3})
		EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	for (auto r : {r1, r2, r3}) {
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].length, 0u);
	}
	EXPECT_EQ(std::string_view(buffer, 4), "####");
}

TEST_F(StreamSend, FaultsOnEitherSideAreReportedPerSide) {
	auto [a, b] = stream();
	auto *bad = reinterpret_cast<char *>(16);
	auto data = pattern(8000, 13);
	std::vector<char> received(8000);
	struct Case {
		const char *what;
		const void *send;
		std::size_t length;
		bool inline_recv;
		void *recv;
		HelError sender, receiver;
	} cases[] = {
			// A kernel-buffered send that faulted at submission.
			{"bad small send", bad, 10, true, nullptr, kHelErrFault, kHelErrRemoteFault},
			{"bad small send to buffer", bad, 10, false, received.data(), kHelErrFault,
					kHelErrRemoteFault},
			// A streamed send reads the sender's memory when it pairs.
			{"bad streamed send", bad, 8000, false, received.data(), kHelErrFault,
					kHelErrRemoteFault},
			// The receiver's buffer faults: a buffered sender still succeeded.
			{"bad receive of a buffered send", data.data(), 10, false, bad, kHelErrNone,
					kHelErrFault},
			{"bad receive of a streamed send", data.data(), 8000, false, bad, kHelErrRemoteFault,
					kHelErrFault},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.what);
		auto s = submit(a, {send_act(c.send, c.length)});
		auto r = submit(b,
				{c.inline_recv ? act(kHelActionRecvInline) : recv_buffer_act(c.recv, 8000)});
		EXPECT_EQ(take_errors(s), Errors{c.sender});
		EXPECT_EQ(take_errors(r), Errors{c.receiver});
	}
	expect_lane_works(a, b);
}

// A streamed send is copied once, directly from the sender's memory to the receiver's, as far
// as no fault is in the way; a fault part-way through still belongs to the side that faulted.
TEST_F(StreamSend, StreamedSendsThatFaultPartWayAreReportedPerSide) {
	auto [a, b] = stream();
	constexpr std::size_t kPage = 4096;
	// Three host pages, the last of them inaccessible.
	auto *host = static_cast<char *>(
			mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	ASSERT_NE(host, MAP_FAILED);
	std::memset(host, 'h', 2 * kPage);
	ASSERT_EQ(mprotect(host + 2 * kPage, kPage, PROT_NONE), 0);
	std::vector<char> other(3 * kPage, 'o');
	{
		SCOPED_TRACE("the sender's buffer faults after two pages");
		auto s = submit(a, {send_act(host, 3 * kPage)});
		auto r = submit(b, {recv_buffer_act(other.data(), other.size())});
		EXPECT_EQ(take_errors(s), Errors{kHelErrFault});
		EXPECT_EQ(take_errors(r), Errors{kHelErrRemoteFault});
	}
	{
		SCOPED_TRACE("the receiver's buffer faults after two pages");
		auto s = submit(a, {send_act(other.data(), other.size())});
		auto r = submit(b, {recv_buffer_act(host, 3 * kPage)});
		EXPECT_EQ(take_errors(s), Errors{kHelErrRemoteFault});
		EXPECT_EQ(take_errors(r), Errors{kHelErrFault});
	}
	ASSERT_EQ(munmap(host, 3 * kPage), 0);
	expect_lane_works(a, b);
}

TEST_F(StreamSend, StreamedSendsBetweenSimulatedAndHostMemoryArriveWhole) {
	auto [a, b] = stream();
	constexpr std::size_t kSize = 3 * 4096 + 100;
	auto *simulated = static_cast<char *>(helsim::test::map_new_memory(4 * 4096));
	auto *also_simulated = static_cast<char *>(helsim::test::map_new_memory(4 * 4096));
	std::vector<char> host(kSize);
	auto data = pattern(kSize, 21);
	struct Case {
		const char *what;
		char *from, *to;
	} cases[] = {
			{"host to simulated", host.data(), simulated + 50},
			{"simulated to simulated", simulated + 50, also_simulated + 7},
			{"simulated to host", also_simulated + 7, host.data()},
	};
	std::memcpy(host.data(), data.data(), kSize);
	for (const Case &c : cases) {
		SCOPED_TRACE(c.what);
		auto s = submit(a, {send_act(c.from, kSize)});
		auto r = submit(b, {recv_buffer_act(c.to, kSize)});
		EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].length, kSize);
		EXPECT_TRUE(std::equal(data.begin(), data.end(), c.to));
		if (c.to != host.data())
			std::memset(host.data(), 0, kSize); // the last case must bring it back
	}
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, simulated, 4 * 4096), kHelErrNone);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, also_simulated, 4 * 4096), kHelErrNone);
	expect_lane_works(a, b);
}

// A streamed send copies its present pages in the pairing and leaves the rest to a deferred
// transfer, which picks up where that copy stopped: at a page not faulted in yet (the data
// arrives whole) or at a hole in the mapping (the side with the hole faults).
TEST_F(StreamSend, StreamedSendsThatStopAtAPageNotPresentPartWayContinueThere) {
	auto [a, b] = stream();
	constexpr std::size_t kPage = 4096;
	constexpr std::size_t kSize = 4 * kPage;
	auto data = pattern(kSize, 33);
	std::vector<char> host(kSize);
	for (bool sender_side : {true, false}) {
		SCOPED_TRACE(sender_side ? "the sender's pages" : "the receiver's pages");
		// Two pages present, two never touched: the second half needs faults.
		auto *simulated = static_cast<char *>(helsim::test::map_new_memory(kSize));
		auto expected = data;
		char *from = host.data(), *to = simulated;
		if (sender_side) {
			std::memcpy(simulated, data.data(), kSize / 2);
			// Untouched pages read as zeros.
			std::fill(expected.begin() + kSize / 2, expected.end(), 0);
			from = simulated;
			to = host.data();
			std::memset(host.data(), 1, kSize);
		} else {
			std::memset(simulated, 1, kSize / 2);
			std::memcpy(host.data(), data.data(), kSize);
		}
		auto s = submit(a, {send_act(from, kSize)});
		auto r = submit(b, {recv_buffer_act(to, kSize)});
		EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].length, kSize);
		EXPECT_TRUE(std::equal(expected.begin(), expected.end(), to));
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, simulated, kSize), kHelErrNone);
	}
	{
		SCOPED_TRACE("a hole after two present pages of the receiver");
		auto *simulated = static_cast<char *>(helsim::test::map_new_memory(kSize));
		std::memset(simulated, 1, kSize / 2);
		std::memcpy(host.data(), data.data(), kSize);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, simulated + 2 * kPage, kPage), kHelErrNone);
		auto s = submit(a, {send_act(host.data(), kSize)});
		auto r = submit(b, {recv_buffer_act(simulated, kSize)});
		EXPECT_EQ(take_errors(s), Errors{kHelErrRemoteFault});
		EXPECT_EQ(take_errors(r), Errors{kHelErrFault});
		EXPECT_TRUE(std::equal(data.begin(), data.begin() + kSize / 2, simulated));
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, simulated, 2 * kPage), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, simulated + 3 * kPage, kPage), kHelErrNone);
	}
	expect_lane_works(a, b);
}

TEST_F(StreamSend, ScatterGatherListsThatCannotBeReadFault) {
	auto [a, b] = stream();
	HelSgItem items[2] = {{const_cast<char *>("ok"), 2}, {reinterpret_cast<char *>(16), 5}};
	struct Case {
		const char *what;
		const HelSgItem *list;
		std::size_t count;
	} cases[] = {
			{"a piece at a bad address", items, 2},
			{"the list at a bad address", reinterpret_cast<const HelSgItem *>(16), 1},
			{"a list that runs past user space",
					reinterpret_cast<const HelSgItem *>(
							(std::uintptr_t{1} << 47) - sizeof(HelSgItem)),
					2},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.what);
		auto s = submit(a, {sg_act(c.list, c.count)});
		auto r = submit(b, ipc::actions(ipc::recv_inline()));
		EXPECT_EQ(take_errors(s), Errors{kHelErrFault});
		EXPECT_EQ(take_errors(r), Errors{kHelErrRemoteFault});
	}
	expect_lane_works(a, b);
}

// ---------------------------------------------------------------- push / pull

TEST_F(StreamPushPull, PulledDescriptorCarriesTheExposedRights) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	// A lane exposed with Invoke only.
	auto push = submit(a, {push_act(y, kHelRightInvoke)});
	auto pull = submit(b, {pull_act(kHelRightInvoke)});
	EXPECT_EQ(take_errors(push), Errors{kHelErrNone});
	auto pulled = take(pull);
	ASSERT_EQ(pulled.size(), 1u);
	ASSERT_EQ(pulled[0].error, kHelErrNone);
	HelHandle copy = pulled[0].handle;
	EXPECT_NE(copy, y);
	EXPECT_EQ(info_of(copy).type, kHelDescLane);
	EXPECT_EQ(info_of(copy).rights, static_cast<std::uint32_t>(kHelRightInvoke));
	// The copy is the same lane: it talks to x. Without Manage it cannot shut down.
	expect_lane_works(copy, x, "through the copy");
	EXPECT_EQ(helShutdownLane(copy), kHelErrBadRights);
	close(copy);

	// Rights are the pushed descriptor's rights masked with the exposed set: all of them here.
	auto push2 = submit(a, {push_act(dispatcher_->queue(), kHelRightsMax)});
	auto pull2 = submit(b, {pull_act(0)});
	EXPECT_EQ(take_errors(push2), Errors{kHelErrNone});
	auto pulled2 = take(pull2);
	ASSERT_EQ(pulled2.size(), 1u);
	ASSERT_EQ(pulled2[0].error, kHelErrNone);
	EXPECT_EQ(info_of(pulled2[0].handle).type, kHelDescQueue);
	EXPECT_EQ(info_of(pulled2[0].handle).rights, kQueueRights);
	close(pulled2[0].handle);
}

TEST_F(StreamPushPull, MissingRequiredRightsGiveThePullerBadRights) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	auto push = submit(a, {push_act(y, kHelRightInvoke)});
	auto pull = submit(b, {pull_act(kHelRightInvoke | kHelRightManage)});
	EXPECT_EQ(take_errors(push), Errors{kHelErrNone});
	auto pulled = take(pull);
	ASSERT_EQ(pulled.size(), 1u);
	EXPECT_EQ(pulled[0].error, kHelErrBadRights);
	// Exposing nothing and requiring nothing is fine; the handle has no rights.
	auto push2 = submit(a, {push_act(y, kHelRightNull)});
	auto pull2 = submit(b, {pull_act(kHelRightNull)});
	EXPECT_EQ(take_errors(push2), Errors{kHelErrNone});
	auto pulled2 = take(pull2);
	ASSERT_EQ(pulled2.size(), 1u);
	ASSERT_EQ(pulled2[0].error, kHelErrNone);
	EXPECT_EQ(info_of(pulled2[0].handle).rights, kHelRightNull);
	auto denied = submit(pulled2[0].handle, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(submit_errors_.size(), 0u);
	pump();
	ASSERT_EQ(submit_errors_.size(), 1u);
	EXPECT_EQ(submit_errors_[0], kHelErrBadRights) << "a lane without Invoke";
	submit_errors_.clear();
	inflight_.erase(denied);
	close(pulled2[0].handle);
	// A token has no rights at all: requiring any fails.
	HelHandle token;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	auto push3 = submit(a, {push_act(token, kHelRightsMax)});
	auto pull3 = submit(b, {pull_act(kHelRightRead)});
	EXPECT_EQ(take_errors(push3), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(pull3), Errors{kHelErrBadRights});
}

TEST_F(StreamPushPull, PushCapturesTheDescriptorAtSubmission) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	auto push = submit(a, {push_act(y, kHelRightsMax)});
	pump();
	EXPECT_FALSE(done(push));
	close(y); // the push holds its own reference
	auto pull = submit(b, {pull_act(kLaneRights)});
	EXPECT_EQ(take_errors(push), Errors{kHelErrNone});
	auto pulled = take(pull);
	ASSERT_EQ(pulled.size(), 1u);
	ASSERT_EQ(pulled[0].error, kHelErrNone);
	EXPECT_EQ(info_of(pulled[0].handle).rights, kLaneRights);
	expect_lane_works(x, pulled[0].handle);
	close(pulled[0].handle);
	// With its last handle gone, x's peer is gone too.
	auto late = submit(x, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(late), Errors{kHelErrEndOfLane});
}

TEST(StreamPushPullUniverses, PulledLaneWorksInThePullersUniverse) {
	helsim::Machine machine{with_cpus(2)};
	HelHandle a, b;
	{
		auto host = machine.attach();
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
	}
	struct {
		HelError push = -1, push_denied = -1, pull_denied = -1, shutdown = -1;
		HelError pull = -1, sent = -1, received = -1;
		helsim::ext::DescriptorInfo info{-1, 0};
		std::string text;
	} seen;
	machine.spawn("pusher",
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher d;
				HelHandle x, y;
				ASSERT_EQ(helCreateStream(&x, &y, 0), kHelErrNone);
				// Push y and drop it at once: the push captured it.
				ipc::submit(d, h[0], 1, ipc::push_descriptor(y, kHelRightInvoke));
				d.flush();
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, y), kHelErrNone);
				auto pushed = d.wait_for(1, [](helsim::Element &&) { FAIL(); });
				seen.push = pushed.error();
				auto got = ipc::exchange_sync(d, x, ipc::recv_inline());
				seen.received = std::get<0>(got.results).error;
				seen.text = std::get<0>(got.results).text();
				auto denied = ipc::exchange_sync(d, h[0], ipc::push_descriptor(x, kHelRightInvoke));
				seen.push_denied = std::get<0>(denied.results).error;
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, x), kHelErrNone);
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h[0]), kHelErrNone);
			},
			{a});
	machine.spawn("puller",
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher d;
				auto pulled = ipc::exchange_sync(d, h[0], ipc::pull_descriptor(kHelRightInvoke));
				auto &[result] = pulled.results;
				seen.pull = result.error;
				if (result.error != kHelErrNone)
					return;
				helsim::ext::describe_descriptor(result.handle, seen.info);
				seen.shutdown = helShutdownLane(result.handle);
				auto sent = ipc::exchange_sync(d, result.handle,
						ipc::send_buffer("from the other universe"));
				seen.sent = std::get<0>(sent.results).error;
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, result.handle), kHelErrNone);
				auto denied = ipc::exchange_sync(d, h[0],
						ipc::pull_descriptor(kHelRightInvoke | kHelRightManage));
				seen.pull_denied = std::get<0>(denied.results).error;
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h[0]), kHelErrNone);
			},
			{b});
	{
		auto host = machine.attach();
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, a), kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
	}
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(seen.push, kHelErrNone);
	EXPECT_EQ(seen.pull, kHelErrNone);
	EXPECT_EQ(seen.info.type, kHelDescLane);
	EXPECT_EQ(seen.info.rights, static_cast<std::uint32_t>(kHelRightInvoke));
	EXPECT_EQ(seen.shutdown, kHelErrBadRights);
	EXPECT_EQ(seen.sent, kHelErrNone);
	EXPECT_EQ(seen.received, kHelErrNone);
	EXPECT_EQ(seen.text, "from the other universe");
	EXPECT_EQ(seen.push_denied, kHelErrNone);
	EXPECT_EQ(seen.pull_denied, kHelErrBadRights);
}

// ---------------------------------------------------------------- robustness

// Issue 10, item 2: a SendFromBufferSg list and the sum of its lengths were allocated at
// whatever size user space named. With {&b, 1}, {&b, 2^63} ASan aborted, and a plain build
// threw std::bad_alloc out of helSubmitAsync, or out of helDriveQueue, leaving the element
// without any completion. Lists are bounded (1024 items, 16 MiB in all) and refused with
// kHelErrIllegalArgs; a failed kernel allocation is kHelErrNoMemory, never an exception.
HelError throwing_handler(helsim::ext::Caller &, const HelWord *, HelWord *) {
	throw std::bad_alloc{};
}

TEST(Robustness, UserSizedSgAllocation) {
	constexpr std::size_t kMaxItems = 1024, kMaxBytes = std::size_t{16} << 20;
	helsim::Machine machine{with_cpus(1)};
	constexpr std::uint32_t kThrows = helsim::kFirstExtensionSyscall;
	helsim::ext::register_syscall(machine, kThrows, "test.throws", throwing_handler);
	auto attached = machine.attach();
	helsim::Dispatcher d;
	HelHandle a = kHelNullHandle, b = kHelNullHandle;
	ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
	// Every element the kernel has posted so far, as (context, error).
	auto drain = [&] {
		std::vector<std::pair<std::uintptr_t, HelError>> out;
		d.flush();
		while (auto e = d.poll())
			out.emplace_back(e->context(), e->error());
		return out;
	};
	using Posted = std::vector<std::pair<std::uintptr_t, HelError>>;

	char byte = 'x';
	std::vector<HelSgItem> too_many(kMaxItems + 1, HelSgItem{&byte, 1});
	HelSgItem repro[] = {{&byte, 1}, {&byte, std::size_t{1} << 63}};
	HelSgItem wraps[] = {{&byte, SIZE_MAX}, {&byte, 2}}; // thor's one check: the sum overflows
	HelSgItem too_long[] = {{&byte, kMaxBytes}, {&byte, 1}};
	struct Case {
		const char *what;
		HelAction send;
	} cases[] = {
			{"the issue's repro", sg_act(repro, 2)},
			{"a sum that wraps", sg_act(wraps, 2)},
			{"one byte more than 16 MiB", sg_act(too_long, 2)},
			{"1025 items", sg_act(too_many.data(), too_many.size())},
			{"an absurd count", sg_act(repro, std::size_t{1} << 59)},
	};
	std::uintptr_t context = 0x100;
	for (const Case &c : cases) {
		SCOPED_TRACE(c.what);
		auto payload = sq_payload(a, {&c.send, 1}, 1);
		d.submit(kHelSubmitExchangeMsgs, ++context, std::span<const std::byte>{payload});
		EXPECT_EQ(drain(), (Posted{{kSubmitErrorContext, kHelErrIllegalArgs}}))
				<< "exactly one completion: the submission error";
		EXPECT_EQ(helSubmitAsync(a, &c.send, 1, d.queue(), ++context, 0), kHelErrIllegalArgs);
		EXPECT_EQ(drain(), Posted{}) << "a refused helSubmitAsync posts nothing";
	}

	// At the limits: 1024 items, and 16 MiB in all.
	std::vector<char> data = pattern(kMaxItems, 7);
	std::vector<HelSgItem> bytes;
	for (char &c : data)
		bytes.push_back({&c, 1});
	std::vector<char> big = pattern(kMaxBytes / 16, 8);
	std::vector<HelSgItem> pieces(16, HelSgItem{big.data(), big.size()});
	std::vector<char> received(kMaxBytes);
	for (auto *list : {&bytes, &pieces}) {
		HelAction send = sg_act(list->data(), list->size());
		HelAction recv = recv_buffer_act(received.data(), received.size());
		ASSERT_EQ(helSubmitAsync(a, &send, 1, d.queue(), 1, 0), kHelErrNone);
		ASSERT_EQ(helSubmitAsync(b, &recv, 1, d.queue(), 2, 0), kHelErrNone);
		EXPECT_EQ(drain(), (Posted{{1, kHelErrNone}, {2, kHelErrNone}}));
		for (std::size_t i = 0; i < list->size(); ++i)
			ASSERT_EQ(std::memcmp(received.data() + i * (*list)[i].length, (*list)[i].buffer,
							  (*list)[i].length),
					0);
	}

	// Any allocation failure in kernel code is an error value (an extension row stands in
	// for the kernel code, which cannot be made to run out of host memory on demand).
	HelWord out = 0;
	EXPECT_EQ(helSyscall0_1(static_cast<int>(kThrows), &out), kHelErrNoMemory);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, a), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
}
