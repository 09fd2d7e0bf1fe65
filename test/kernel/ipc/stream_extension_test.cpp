// Extension stream actions (helsim/extension.hpp, src/kernel/ipc/stream_extension.cpp) on a
// machine: a new send that pairs with the built-in receives, a new action that pairs with
// itself, and every error an extension action can meet.
#include <algorithm>
#include <stdexcept>
#include <string>

#include <helsim/extension.hpp>

#include "stream_support.hpp"

using namespace helsim::stream_test;
namespace ext = helsim::ext;

namespace {

constexpr int kSendReversed = ext::kFirstExtensionAction;
constexpr int kCount = ext::kFirstExtensionAction + 1;

// A send whose data arrives reversed: captured at submission, rewritten in the kernel.
HelError decode_reversed(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	if (HelError e = item.capture(caller, action.buffer, action.length); e != kHelErrNone)
		return e;
	std::ranges::reverse(item.data());
	return kHelErrNone;
}

void pair_reversed(ext::StreamPair &pair) { pair.deliver(pair.first(), pair.second()); }

// Two counts meet: each learns how many bytes the other captured.
HelError decode_count(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	return item.capture(caller, action.buffer, action.length);
}

void pair_counts(ext::StreamPair &pair) {
	ext::StreamItem a = pair.first(), b = pair.second();
	a.set_result_length(b.data().size());
	b.set_result_length(a.data().size());
	pair.finish(a, kHelErrNone);
	pair.finish(b, kHelErrNone);
}

// Captures twice, or more than the kernel takes: both refused before memory is read.
HelError decode_twice(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	if (HelError e = item.capture(caller, action.buffer, action.length); e != kHelErrNone)
		return e;
	return item.capture(caller, action.buffer, action.length);
}

HelError decode_too_much(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	return item.capture(caller, action.buffer, ext::StreamItem::kMaxCapture + 1);
}

// A send whose bytes arrive after a zeroed 4-byte header (StreamItem::capture's headroom).
constexpr std::size_t kHeadroom = 4;

HelError decode_headed(ext::Caller &caller, const HelAction &action, ext::StreamItem item) {
	return item.capture(caller, action.buffer, action.length, kHeadroom);
}

// Headroom and size above kMaxCapture together: refused before memory is read.
HelError decode_headroom_too_much(ext::Caller &caller, const HelAction &action,
		ext::StreamItem item) {
	return item.capture(caller, action.buffer, action.length,
			ext::StreamItem::kMaxCapture - action.length + 1);
}

HelAction ext_act(int type, const void *buffer, std::size_t length, std::uint32_t flags = 0) {
	HelAction a = act(type, flags);
	a.buffer = const_cast<void *>(buffer);
	a.length = length;
	return a;
}

class StreamExtensionMachine : public StreamFixture {
protected:
	StreamExtensionMachine() {
		ext::register_stream_action(machine_, kSendReversed, "sendReversed",
				ext::StreamResult::simple, decode_reversed);
		ext::register_stream_pair(machine_, kSendReversed, kHelActionRecvToBuffer, pair_reversed);
		ext::register_stream_pair(machine_, kSendReversed, kHelActionRecvInline, pair_reversed);
		ext::register_stream_action(machine_, kCount, "count", ext::StreamResult::length,
				decode_count);
		ext::register_stream_pair(machine_, kCount, kCount, pair_counts);
		length_result_types_.push_back(kCount);
	}
};

class StreamExtension : public StreamExtensionMachine {};
class StreamExtensionSubmit : public StreamExtensionMachine,
							  public ::testing::WithParamInterface<Path> {};

} // namespace

TEST_F(StreamExtension, ANewSendPairsWithRecvToBufferThroughTheKernelsCopy) {
	auto [a, b] = stream();
	char buffer[16] = {};
	auto s = submit(a, {ext_act(kSendReversed, "stream", 6)});
	auto r = submit(b, {recv_buffer_act(buffer, sizeof(buffer))});
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].length, 6u);
	EXPECT_EQ(std::string(buffer, 6), "maerts");
}

TEST_F(StreamExtension, ANewSendPairsWithRecvInlineInEitherOrder) {
	auto [a, b] = stream();
	auto r = submit(b, {act(kHelActionRecvInline)});
	auto s = submit(a, {ext_act(kSendReversed, "abc", 3)});
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].data, "cba");
}

TEST_F(StreamExtension, ALargeCaptureStreamsIntoAReceiveBuffer) {
	auto [a, b] = stream();
	auto data = pattern(20000, 7);
	std::vector<char> buffer(data.size());
	auto s = submit(a, {ext_act(kSendReversed, data.data(), data.size())});
	auto r = submit(b, {recv_buffer_act(buffer.data(), buffer.size())});
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	EXPECT_EQ(take_errors(r), Errors{kHelErrNone});
	std::ranges::reverse(data);
	EXPECT_EQ(buffer, data);
}

TEST_F(StreamExtension, TooLittleRoomIsBufferTooSmallOnBothSides) {
	auto [a, b] = stream();
	char buffer[2];
	auto s = submit(a, {ext_act(kSendReversed, "abc", 3)});
	auto r = submit(b, {recv_buffer_act(buffer, sizeof(buffer))});
	EXPECT_EQ(take_errors(s), Errors{kHelErrBufferTooSmall});
	EXPECT_EQ(take_errors(r), Errors{kHelErrBufferTooSmall});
}

TEST_F(StreamExtension, HeadroomIsZeroedKernelDataAheadOfTheCapturedBytes) {
	constexpr int kHeaded = kCount + 1;
	ext::register_stream_action(machine_, kHeaded, "headed", ext::StreamResult::simple,
			decode_headed);
	ext::register_stream_pair(machine_, kHeaded, kHelActionRecvInline, pair_reversed);
	auto [a, b] = stream();
	auto s = submit(a, {ext_act(kHeaded, "abc", 3)});
	auto r = submit(b, {act(kHelActionRecvInline)});
	EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
	auto results = take(r);
	ASSERT_EQ(results.size(), 1u);
	EXPECT_EQ(results[0].error, kHelErrNone);
	EXPECT_EQ(results[0].data, std::string("\0\0\0\0abc", kHeadroom + 3));
}

TEST_F(StreamExtension, TwoNewActionsPairWithEachOtherAndWriteLengthResults) {
	auto [a, b] = stream();
	auto x = submit(a, {ext_act(kCount, "four", 4)});
	auto y = submit(b, {ext_act(kCount, "nine....!", 9)});
	pump();
	EXPECT_EQ(raw(x).size(), sizeof(HelLengthResult)); // parsed as one, filling the element
	for (auto [context, length] : {std::pair{x, std::size_t{9}}, std::pair{y, std::size_t{4}}}) {
		auto results = take(context);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].length, length);
	}
}

TEST_F(StreamExtension, PairsWithoutARuleAreMismatchesAndDismissEndsThem) {
	auto [a, b] = stream();
	auto s = submit(a, {ext_act(kSendReversed, "abc", 3)});
	auto c = submit(b, {ext_act(kCount, "abc", 3)});
	EXPECT_EQ(take_errors(s), Errors{kHelErrTransmissionMismatch});
	EXPECT_EQ(take_errors(c), Errors{kHelErrTransmissionMismatch});
	auto s2 = submit(a, {ext_act(kSendReversed, "abc", 3)});
	auto d = submit(b, {act(kHelActionDismiss)});
	EXPECT_EQ(take_errors(s2), Errors{kHelErrDismissed});
	EXPECT_EQ(take_errors(d), Errors{kHelErrNone});
	expect_lane_works(a, b);
}

TEST_P(StreamExtensionSubmit, ErrorsRefuseTheSubmission) {
	auto [a, b] = stream();
	// Not registered on this machine.
	EXPECT_EQ(submission_error(a, {ext_act(kCount + 1, "abc", 3)}, GetParam()), kHelErrIllegalArgs);
	// The decode's own error: the data cannot be read.
	EXPECT_EQ(submission_error(a, {ext_act(kSendReversed, nullptr, 8)}, GetParam()), kHelErrFault);
	// Extension actions take no ancillary list and want no lane.
	EXPECT_EQ(submission_error(a, {ext_act(kSendReversed, "abc", 3, kHelItemAncillary)},
					  GetParam()),
			kHelErrIllegalArgs);
	EXPECT_EQ(submission_error(a, {ext_act(kSendReversed, "abc", 3, kHelItemWantLane)}, GetParam()),
			kHelErrIllegalArgs);
	ext::register_stream_action(machine_, kCount + 1, "twice", ext::StreamResult::simple,
			decode_twice);
	EXPECT_EQ(submission_error(a, {ext_act(kCount + 1, "abc", 3)}, GetParam()),
			kHelErrIllegalState);
	ext::register_stream_action(machine_, kCount + 2, "tooMuch", ext::StreamResult::simple,
			decode_too_much);
	EXPECT_EQ(submission_error(a, {ext_act(kCount + 2, "abc", 3)}, GetParam()), kHelErrIllegalArgs);
	ext::register_stream_action(machine_, kCount + 3, "headroomTooMuch", ext::StreamResult::simple,
			decode_headroom_too_much);
	EXPECT_EQ(submission_error(a, {ext_act(kCount + 3, "abc", 3)}, GetParam()), kHelErrIllegalArgs);
	expect_lane_works(a, b);
}

INSTANTIATE_TEST_SUITE_P(Paths, StreamExtensionSubmit, ::testing::Values(Path::sq, Path::legacy),
		path_name);

TEST_F(StreamExtension, RegistrationRefusesBadNumbersTakenTypesAndTakenPairs) {
	auto none = [](ext::Caller &, const HelAction &, ext::StreamItem) -> HelError {
		return kHelErrNone;
	};
	for (int type : {int{kHelActionSendFromBuffer}, 12, ext::kFirstExtensionAction - 1,
				 ext::kFirstExtensionAction + ext::kExtensionActionCount})
		EXPECT_THROW(ext::register_stream_action(machine_, type, "bad", ext::StreamResult::simple,
							 none),
				std::invalid_argument)
				<< type;
	EXPECT_THROW(ext::register_stream_action(machine_, kSendReversed, "again",
						 ext::StreamResult::simple, none),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_action(machine_, kCount + 1, "no decode",
						 ext::StreamResult::simple, nullptr),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_pair(machine_, kSendReversed, kHelActionRecvToBuffer,
						 pair_reversed),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_pair(machine_, kSendReversed, kHelActionDismiss,
						 pair_reversed),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_pair(machine_, kHelActionSendFromBuffer, kHelActionRecvInline,
						 pair_reversed),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_pair(machine_, kCount + 1, kCount, pair_counts),
			std::invalid_argument);
	EXPECT_THROW(ext::register_stream_pair(machine_, kCount, kHelActionRecvInline, nullptr),
			std::invalid_argument);
}
