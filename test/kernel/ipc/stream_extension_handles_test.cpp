// Extension stream actions that carry handles (StreamItem::capture_descriptor,
// StreamPair::hand_over, StreamResult::handle; src/kernel/ipc/stream_extension.cpp): a new send
// that hands a descriptor to the built-in pullDescriptor as a push would, a new receive that
// takes one from a built-in pushDescriptor, and every error on the way.
#include <stdexcept>

#include <helsim/extension.hpp>

#include "stream_support.hpp"

using namespace helsim::stream_test;
namespace ext = helsim::ext;

namespace {

constexpr int kSendHandle = ext::kFirstExtensionAction;        // exposes action.rights
constexpr int kSendInvocable = ext::kFirstExtensionAction + 1; // requires Invoke
constexpr int kRecvHandle = ext::kFirstExtensionAction + 2;
constexpr int kCaptureTwice = ext::kFirstExtensionAction + 3;
constexpr int kSendNothing = ext::kFirstExtensionAction + 4; // hands over without a capture

HelError decode_send_handle(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	return item.capture_descriptor(caller, action.handle, 0, action.rights);
}

HelError decode_send_invocable(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	return item.capture_descriptor(caller, action.handle, kHelRightInvoke);
}

HelError decode_twice(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	if (HelError e = item.capture_descriptor(caller, action.handle, 0); e != kHelErrNone)
		return e;
	return item.capture_descriptor(caller, action.handle, 0);
}

HelError decode_nothing(ext::Caller &, const HelAction &, ext::StreamItem) { return kHelErrNone; }

void pair_hand_over(ext::StreamPair &pair) { pair.hand_over(pair.first(), pair.second()); }

HelAction handle_act(int type, HelHandle handle, std::uint32_t rights = kHelRightsMax) {
	HelAction a = act(type);
	a.handle = handle;
	a.rights = rights;
	return a;
}

class StreamHandlesMachine : public StreamFixture {
protected:
	explicit StreamHandlesMachine(const helsim::MachineConfig &config = with_cpus(1))
	: StreamFixture{config} {
		auto simple = ext::StreamResult::simple;
		ext::register_stream_action(machine_, kSendHandle, "sendHandle", simple,
				decode_send_handle);
		ext::register_stream_action(machine_, kSendInvocable, "sendInvocable", simple,
				decode_send_invocable);
		ext::register_stream_action(machine_, kRecvHandle, "recvHandle", ext::StreamResult::handle,
				decode_nothing);
		ext::register_stream_action(machine_, kCaptureTwice, "captureTwice", simple, decode_twice);
		ext::register_stream_action(machine_, kSendNothing, "sendNothing", simple, decode_nothing);
		for (int send : {kSendHandle, kSendInvocable, kSendNothing}) {
			ext::register_stream_pair(machine_, send, kHelActionPullDescriptor, pair_hand_over);
			ext::register_stream_pair(machine_, send, kRecvHandle, pair_hand_over);
		}
		// A receive of the wrong kind: hand_over treats it as a push meeting it would.
		ext::register_stream_pair(machine_, kSendHandle, kHelActionRecvInline, pair_hand_over);
		// A built-in push meets the new receive.
		ext::register_stream_pair(machine_, kHelActionPushDescriptor, kRecvHandle, pair_hand_over);
		handle_result_types_.push_back(kRecvHandle);
	}

	// The one result of a receive that succeeded.
	HelHandle pulled(std::uintptr_t context) {
		auto results = take(context);
		if (results.size() != 1u || results[0].error != kHelErrNone) {
			ADD_FAILURE() << "the receive failed";
			return kHelNullHandle;
		}
		return results[0].handle;
	}
};

class StreamExtensionHandles : public StreamHandlesMachine {};
class StreamExtensionHandlesSubmit : public StreamHandlesMachine,
									 public ::testing::WithParamInterface<Path> {};

// The pull's attach is the first handle of a new segment of the handle table, and that
// segment's allocation fails (FaultPoint::handle_table_growth): the second growth, after the
// universe's first segment (the fixture's queue).
helsim::MachineConfig failing_handle_table() {
	helsim::MachineConfig config = with_cpus(1);
	config.inject.at(helsim::FaultPoint::handle_table_growth) = 2;
	return config;
}

class StreamExtensionHandlesFull : public StreamHandlesMachine {
protected:
	StreamExtensionHandlesFull() : StreamHandlesMachine{failing_handle_table()} {}

	// Takes handle numbers until the next attach starts a segment (handles are never reused).
	void fill_handle_segment() {
		constexpr HelHandle kSegmentHandles = 1024;
		for (;;) {
			HelHandle token;
			ASSERT_EQ(helCreateToken(&token), kHelErrNone);
			close(token);
			if (token % kSegmentHandles == kSegmentHandles - 1)
				return;
		}
	}
};

} // namespace

TEST_F(StreamExtensionHandles, ANewSendHandsADescriptorToPullDescriptorAsAPushWould) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	// Exposed with Invoke only: the pulled copy has nothing more.
	auto send = submit(a, {handle_act(kSendHandle, y, kHelRightInvoke)});
	auto pull = submit(b, {pull_act(kHelRightInvoke)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrNone});
	HelHandle copy = pulled(pull);
	EXPECT_NE(copy, y);
	EXPECT_EQ(info_of(copy).type, kHelDescLane);
	EXPECT_EQ(info_of(copy).rights, static_cast<std::uint32_t>(kHelRightInvoke));
	expect_lane_works(copy, x, "through the copy");
	EXPECT_EQ(helShutdownLane(copy), kHelErrBadRights);
	close(copy);
	// A pull that requires rights the send does not expose: kHelErrBadRights for the pull,
	// and the send succeeds, as with a pushDescriptor.
	auto send2 = submit(a, {handle_act(kSendHandle, y, kHelRightInvoke)});
	auto pull2 = submit(b, {pull_act(kHelRightInvoke | kHelRightManage)});
	EXPECT_EQ(take_errors(send2), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(pull2), Errors{kHelErrBadRights});
}

TEST_F(StreamExtensionHandles, ANewReceiveTakesADescriptorFromAPushOrANewSend) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	HelHandle narrow;
	ASSERT_EQ(helTransferDescriptor(y, kHelThisUniverse, kHelTransferDescriptorOut, kHelRightInvoke,
					  0, &narrow),
			kHelErrNone);
	// From a built-in push, exposing everything: the descriptor's own rights, no more.
	auto push = submit(a, {push_act(narrow, kHelRightsMax)});
	auto recv = submit(b, {act(kRecvHandle)});
	EXPECT_EQ(take_errors(push), Errors{kHelErrNone});
	HelHandle first = pulled(recv);
	EXPECT_EQ(info_of(first).type, kHelDescLane);
	EXPECT_EQ(info_of(first).rights, static_cast<std::uint32_t>(kHelRightInvoke));
	expect_lane_works(x, first);
	// From the new send, the receive first this time.
	auto recv2 = submit(b, {act(kRecvHandle)});
	auto send = submit(a, {handle_act(kSendHandle, narrow)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrNone});
	HelHandle second = pulled(recv2);
	EXPECT_EQ(info_of(second).rights, static_cast<std::uint32_t>(kHelRightInvoke));
	expect_lane_works(second, x);
	for (HelHandle h : {first, second, narrow})
		close(h);
}

TEST_F(StreamExtensionHandles, TheCaptureHappensAtSubmission) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	auto send = submit(a, {handle_act(kSendInvocable, y)});
	EXPECT_FALSE(done(send));
	close(y); // the item holds its own reference
	auto recv = submit(b, {act(kRecvHandle)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrNone});
	HelHandle copy = pulled(recv);
	EXPECT_EQ(info_of(copy).rights, kLaneRights);
	expect_lane_works(x, copy);
	close(copy);
}

TEST_F(StreamExtensionHandles, AnItemThatNeverPairsReleasesItsDescriptor) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	auto send = submit(a, {handle_act(kSendHandle, y)});
	close(y);
	close(b); // the send fails with the lane; y's last reference goes with it
	EXPECT_EQ(take_errors(send), Errors{kHelErrEndOfLane});
	auto late = submit(x, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(late), Errors{kHelErrEndOfLane});
	close(a);
	close(x);
}

TEST_F(StreamExtensionHandles, DismissAndAReceiveOfAnotherKindReleaseTheDescriptor) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	auto send = submit(a, {handle_act(kSendHandle, y)});
	auto dismiss = submit(b, {act(kHelActionDismiss)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrDismissed});
	EXPECT_EQ(take_errors(dismiss), Errors{kHelErrNone});
	// hand_over to a recvInline: what a push meeting it gets.
	auto send2 = submit(a, {handle_act(kSendHandle, y)});
	auto recv = submit(b, {act(kHelActionRecvInline)});
	EXPECT_EQ(take_errors(send2), Errors{kHelErrTransmissionMismatch});
	EXPECT_EQ(take_errors(recv), Errors{kHelErrTransmissionMismatch});
	// No pair rule at all (the registry's mismatch).
	auto send3 = submit(a, {handle_act(kSendHandle, y)});
	auto recv3 = submit(b, {recv_buffer_act(nullptr, 0)});
	EXPECT_EQ(take_errors(send3), Errors{kHelErrTransmissionMismatch});
	EXPECT_EQ(take_errors(recv3), Errors{kHelErrTransmissionMismatch});
	close(y); // nothing else holds x's peer now
	auto late = submit(x, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(late), Errors{kHelErrEndOfLane});
	expect_lane_works(a, b);
}

TEST_F(StreamExtensionHandles, HandingOverWithoutACaptureIsIllegalStateOnBothSides) {
	auto [a, b] = stream();
	auto send = submit(a, {act(kSendNothing)});
	auto pull = submit(b, {pull_act(0)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrIllegalState});
	EXPECT_EQ(take_errors(pull), Errors{kHelErrIllegalState});
	auto send2 = submit(a, {act(kSendNothing)});
	auto recv = submit(b, {act(kRecvHandle)});
	EXPECT_EQ(take_errors(send2), Errors{kHelErrIllegalState});
	auto results = take(recv);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrIllegalState);
	EXPECT_EQ(results[0].handle, kHelNullHandle);
}

TEST_P(StreamExtensionHandlesSubmit, DecodeErrorsRefuseTheSubmission) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	EXPECT_EQ(submission_error(a, {handle_act(kSendHandle, 12345)}, GetParam()),
			kHelErrNoDescriptor);
	EXPECT_EQ(submission_error(a, {handle_act(kSendHandle, kHelNullHandle)}, GetParam()),
			kHelErrNoDescriptor);
	HelHandle weak;
	ASSERT_EQ(helTransferDescriptor(y, kHelThisUniverse, kHelTransferDescriptorOut, kHelRightManage,
					  0, &weak),
			kHelErrNone);
	EXPECT_EQ(submission_error(a, {handle_act(kSendInvocable, weak)}, GetParam()),
			kHelErrBadRights);
	EXPECT_EQ(submission_error(a, {handle_act(kCaptureTwice, y)}, GetParam()), kHelErrIllegalState);
	// The refused items let their descriptors go: with both handles closed, x's peer is gone.
	close(weak);
	close(y);
	auto late = submit(x, ipc::actions(ipc::recv_inline()));
	EXPECT_EQ(take_errors(late), Errors{kHelErrEndOfLane});
	expect_lane_works(a, b);
}

TEST_F(StreamExtensionHandles, RegistrationRefusesAResultThatIsNoStreamResult) {
	EXPECT_THROW(ext::register_stream_action(machine_, kSendNothing + 1, "bad result",
						 static_cast<ext::StreamResult>(3), decode_nothing),
			std::invalid_argument);
	// The type stays free.
	ext::register_stream_action(machine_, kSendNothing + 1, "good result",
			ext::StreamResult::handle, decode_nothing);
}

INSTANTIATE_TEST_SUITE_P(Paths, StreamExtensionHandlesSubmit,
		::testing::Values(Path::sq, Path::legacy), path_name);

TEST_F(StreamExtensionHandlesFull, AFailedAttachIsNoMemoryForTheReceiveOnly) {
	auto [a, b] = stream();
	auto [x, y] = stream();
	fill_handle_segment();
	auto send = submit(a, {handle_act(kSendHandle, y)});
	auto recv = submit(b, {act(kRecvHandle)});
	EXPECT_EQ(take_errors(send), Errors{kHelErrNone});
	auto results = take(recv);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNoMemory);
	EXPECT_EQ(results[0].handle, kHelNullHandle);
	// Only that one growth failed: the next attach gets its handle.
	auto send2 = submit(a, {handle_act(kSendHandle, y)});
	auto pull = submit(b, {pull_act(kLaneRights)});
	EXPECT_EQ(take_errors(send2), Errors{kHelErrNone});
	HelHandle copy = pulled(pull);
	EXPECT_EQ(info_of(copy).type, kHelDescLane);
	expect_lane_works(x, copy);
	close(copy);
}
