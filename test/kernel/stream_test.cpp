// Tests of streams (src/kernel/stream.cpp) against hel-reference.md section 3: helCreateStream
// and lane credentials, every action pair and its outcome, item-tree validation, submission
// errors on the SQ and the legacy helSubmitAsync path, the layout of the one completion
// element per exchange, helShutdownLane and the end of a lane when its last handle closes.
//
// Most tests run on one attached host thread: every pairing happens synchronously while
// helDriveQueue processes the SQ, so the order of submissions is the order of pairing. The
// fixture's TearDown checks that every exchange completed exactly once, that the test looked
// at every completion, and that the machine ends with nothing pending and nothing leaked.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

namespace ipc = helsim::ipc;

constexpr std::uintptr_t kSubmitErrorContext = ~std::uintptr_t{0};
constexpr std::uint32_t kLaneRights = kHelRightInvoke | kHelRightManage;
constexpr std::uint32_t kQueueRights = kHelRightRead | kHelRightWrite | kHelRightInvoke |
		kHelRightAssign | kHelRightWait | kHelRightSignal;

using Errors = std::vector<HelError>;

enum class Path { sq, legacy };

std::string path_name(const ::testing::TestParamInfo<Path> &info) {
	return info.param == Path::sq ? "Sq" : "Legacy";
}

std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// ---------------------------------------------------------------- raw actions

HelAction act(int type, std::uint32_t flags = 0) {
	HelAction a{};
	a.type = type;
	a.flags = flags;
	return a;
}
HelAction send_act(const void *buffer, std::size_t length, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionSendFromBuffer, flags);
	a.buffer = const_cast<void *>(buffer);
	a.length = length;
	return a;
}
HelAction sg_act(const HelSgItem *items, std::size_t count, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionSendFromBufferSg, flags);
	a.buffer = const_cast<HelSgItem *>(items);
	a.length = count;
	return a;
}
HelAction recv_buffer_act(void *buffer, std::size_t length, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionRecvToBuffer, flags);
	a.buffer = buffer;
	a.length = length;
	return a;
}
HelAction push_act(HelHandle handle, std::uint32_t exposed, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionPushDescriptor, flags);
	a.handle = handle;
	a.rights = exposed;
	return a;
}
HelAction pull_act(std::uint32_t required, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionPullDescriptor, flags);
	a.rights = required;
	return a;
}
HelAction imbue_act(HelHandle handle, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionImbueCredentials, flags);
	a.handle = handle;
	return a;
}

std::vector<std::byte> sq_payload(HelHandle lane, std::span<const HelAction> actions,
		std::size_t count, std::uint32_t flags = 0) {
	HelSqExchangeMsgs header{lane, count, flags};
	std::vector<std::byte> out(sizeof(header) + actions.size_bytes());
	std::memcpy(out.data(), &header, sizeof(header));
	if (!actions.empty())
		std::memcpy(out.data() + sizeof(header), actions.data(), actions.size_bytes());
	return out;
}

std::vector<char> pattern(std::size_t n, unsigned seed) {
	std::vector<char> v(n);
	std::uint32_t x = seed * 2654435761u + 12345u;
	for (auto &c : v) {
		x = x * 1103515245u + 12345u;
		c = static_cast<char>(x >> 23);
	}
	return v;
}

// ---------------------------------------------------------------- results

struct Result {
	int type = 0;
	HelError error = kHelErrNone;
	HelHandle handle = kHelNullHandle;
	std::size_t length = 0;
	std::string data; // RecvInline bytes
	Credentials credentials{};
};

// Parses the payload of an exchange's completion element and checks that the results fill it
// exactly, each padded to 8 bytes.
std::vector<Result> parse_results(std::span<const HelAction> actions,
		std::span<const std::byte> payload) {
	std::vector<Result> out;
	std::size_t at = 0;
	auto fits = [&](std::size_t n) {
		if (at + n <= payload.size())
			return true;
		ADD_FAILURE() << "completion element too short: " << payload.size() << " bytes, need "
					  << at + n;
		return false;
	};
	for (const HelAction &a : actions) {
		Result r;
		r.type = a.type;
		switch (a.type) {
		case kHelActionOffer:
		case kHelActionAccept:
		case kHelActionPullDescriptor: {
			HelHandleResult h;
			if (!fits(sizeof(h)))
				return out;
			std::memcpy(&h, payload.data() + at, sizeof(h));
			r.error = h.error;
			r.handle = h.handle;
			at += sizeof(h);
			break;
		}
		case kHelActionExtractCredentials: {
			HelCredentialsResult c;
			if (!fits(sizeof(c)))
				return out;
			std::memcpy(&c, payload.data() + at, sizeof(c));
			r.error = c.error;
			std::memcpy(r.credentials.data(), c.credentials, 16);
			at += sizeof(c);
			break;
		}
		case kHelActionRecvInline: {
			HelInlineResultNoFlex i;
			if (!fits(sizeof(i)))
				return out;
			std::memcpy(&i, payload.data() + at, sizeof(i));
			r.error = i.error;
			r.length = i.length;
			if (!fits(sizeof(i) + pad8(i.length)))
				return out;
			r.data.assign(reinterpret_cast<const char *>(payload.data() + at + sizeof(i)),
					i.length);
			at += sizeof(i) + pad8(i.length);
			break;
		}
		case kHelActionRecvToBuffer: {
			HelLengthResult l;
			if (!fits(sizeof(l)))
				return out;
			std::memcpy(&l, payload.data() + at, sizeof(l));
			r.error = l.error;
			r.length = l.length;
			at += sizeof(l);
			break;
		}
		default: {
			HelSimpleResult s;
			if (!fits(sizeof(s)))
				return out;
			std::memcpy(&s, payload.data() + at, sizeof(s));
			r.error = s.error;
			at += sizeof(s);
			break;
		}
		}
		out.push_back(std::move(r));
	}
	EXPECT_EQ(at, payload.size()) << "the completion element has bytes no result accounts for";
	return out;
}

Errors errors_of(const std::vector<Result> &results) {
	Errors out;
	for (const Result &r : results)
		out.push_back(r.error);
	return out;
}

helsim::MachineConfig with_cpus(unsigned n) {
	helsim::MachineConfig config;
	config.cpus = n;
	return config;
}

void expect_clean(const helsim::RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_EQ(t.outcome, helsim::ThreadOutcome::returned) << t.name << ": " << t.message;
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// ---------------------------------------------------------------- the fixture

class StreamFixture : public ::testing::Test {
protected:
	StreamFixture() : machine_{with_cpus(1)} {
		attachment_ = machine_.attach();
		dispatcher_.emplace();
	}

	void TearDown() override {
		pump();
		EXPECT_TRUE(inflight_.empty()) << inflight_.size() << " exchange(s) never completed";
		EXPECT_TRUE(completed_.empty()) << completed_.size() << " completion(s) left unchecked";
		EXPECT_TRUE(submit_errors_.empty()) << "unexpected submission error "
											<< (submit_errors_.empty() ? 0 : submit_errors_[0]);
		completed_.clear();
		dispatcher_.reset();
		attachment_.reset();
		// Nothing may stay pending and every object must be reachable from the root universe.
		auto report = machine_.run();
		EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
		EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	}

	std::pair<HelHandle, HelHandle> stream(bool credentials = false) {
		HelHandle a = kHelNullHandle, b = kHelNullHandle;
		EXPECT_EQ(helCreateStream(&a, &b, credentials ? 1 : 0), kHelErrNone);
		return {a, b};
	}

	// Submits an exchange (the kernel processes it before this returns); its completion is
	// collected by pump().
	std::uintptr_t submit(HelHandle lane, std::span<const HelAction> actions,
			Path path = Path::sq) {
		std::uintptr_t context = next_context_++;
		if (path == Path::sq) {
			auto payload = sq_payload(lane, actions, actions.size());
			dispatcher_->submit(kHelSubmitExchangeMsgs, context,
					std::span<const std::byte>{payload});
			dispatcher_->flush(); // the kernel sees submissions in program order
		} else {
			HelError e = helSubmitAsync(lane, actions.data(), actions.size(), dispatcher_->queue(),
					context, 0);
			if (e != kHelErrNone) {
				submit_errors_.push_back(e);
				return context;
			}
		}
		inflight_[context] = {actions.begin(), actions.end()};
		return context;
	}
	std::uintptr_t submit(HelHandle lane, std::initializer_list<HelAction> actions,
			Path path = Path::sq) {
		return submit(lane, std::span<const HelAction>{actions.begin(), actions.size()}, path);
	}

	// Submits something that must fail at submission and returns that error (kHelErrNone if
	// it did not fail; the exchange is then in flight like any other).
	HelError submission_error(HelHandle lane, std::span<const HelAction> actions, Path path) {
		std::size_t before = submit_errors_.size();
		std::uintptr_t context = submit(lane, actions, path);
		pump();
		if (submit_errors_.size() == before)
			return kHelErrNone;
		EXPECT_EQ(submit_errors_.size(), before + 1) << "one submission, several errors";
		HelError e = submit_errors_[before];
		submit_errors_.resize(before);
		inflight_.erase(context); // a rejected exchange never completes; TearDown checks that
		rejected_.push_back(context);
		return e;
	}
	HelError submission_error(HelHandle lane, std::initializer_list<HelAction> actions, Path path) {
		return submission_error(lane, std::span<const HelAction>{actions.begin(), actions.size()},
				path);
	}

	// An SQ element with a hand-made payload; returns the submission error it produced.
	HelError raw_sq_error(std::span<const std::byte> payload) {
		std::size_t before = submit_errors_.size();
		std::uintptr_t context = next_context_++;
		dispatcher_->submit(kHelSubmitExchangeMsgs, context, payload);
		rejected_.push_back(context);
		pump();
		if (submit_errors_.size() != before + 1) {
			ADD_FAILURE() << "expected exactly one submission error";
			return kHelErrNone;
		}
		HelError e = submit_errors_.back();
		submit_errors_.pop_back();
		return e;
	}

	// Hands pending SQ elements to the kernel and collects every completion there is.
	void pump() {
		dispatcher_->flush();
		while (auto element = dispatcher_->poll()) {
			std::uintptr_t context = element->context();
			auto payload = element->payload();
			if (context == kSubmitErrorContext) {
				EXPECT_EQ(payload.size(), sizeof(HelSimpleResult));
				submit_errors_.push_back(element->error());
				continue;
			}
			for (std::uintptr_t r : rejected_)
				EXPECT_NE(context, r) << "a rejected exchange completed";
			auto it = inflight_.find(context);
			if (it == inflight_.end()) {
				ADD_FAILURE() << "completion for unknown or already completed context " << context;
				continue;
			}
			raw_[context].assign(payload.begin(), payload.end());
			completed_[context] = parse_results(it->second, payload);
			inflight_.erase(it);
		}
	}

	bool done(std::uintptr_t context) {
		pump();
		return completed_.count(context) != 0;
	}

	// The results of a completed exchange (each completion can be taken once).
	std::vector<Result> take(std::uintptr_t context) {
		pump();
		auto it = completed_.find(context);
		if (it == completed_.end()) {
			ADD_FAILURE() << "exchange " << context << " has not completed";
			return {};
		}
		auto results = std::move(it->second);
		completed_.erase(it);
		return results;
	}
	Errors take_errors(std::uintptr_t context) { return errors_of(take(context)); }
	std::vector<std::byte> raw(std::uintptr_t context) { return raw_.at(context); }

	void close(HelHandle h) { EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone); }

	// A copy of `h` in this universe with only `rights`.
	HelHandle narrowed(HelHandle h, std::uint32_t rights) {
		HelHandle out = kHelNullHandle;
		EXPECT_EQ(helTransferDescriptor(h, kHelThisUniverse, kHelTransferDescriptorOut, rights, 0,
						  &out),
				kHelErrNone);
		return out;
	}

	// One send/recv pair across a stream, to show that a lane still works.
	void expect_lane_works(HelHandle from, HelHandle to, std::string_view text = "still works") {
		auto s = submit(from, ipc::actions(ipc::send_buffer(text)));
		auto r = submit(to, ipc::actions(ipc::recv_inline()));
		EXPECT_EQ(take_errors(s), Errors{kHelErrNone});
		auto results = take(r);
		ASSERT_EQ(results.size(), 1u);
		EXPECT_EQ(results[0].error, kHelErrNone);
		EXPECT_EQ(results[0].data, text);
	}

	helsim::Machine machine_;
	std::unique_ptr<helsim::Attachment> attachment_;
	std::optional<helsim::Dispatcher> dispatcher_;
	std::uintptr_t next_context_ = 0x100;
	std::map<std::uintptr_t, std::vector<HelAction>> inflight_;
	std::map<std::uintptr_t, std::vector<Result>> completed_;
	std::map<std::uintptr_t, std::vector<std::byte>> raw_;
	std::vector<std::uintptr_t> rejected_;
	std::vector<HelError> submit_errors_;
};

class StreamCreate : public StreamFixture {};
class StreamOfferAccept : public StreamFixture {};
class StreamSend : public StreamFixture {};
class StreamPushPull : public StreamFixture {};
class StreamCredentials : public StreamFixture {};
class StreamDismiss : public StreamFixture {};
class StreamMismatch : public StreamFixture {};
class StreamShutdown : public StreamFixture {};
class StreamClose : public StreamFixture {};
class StreamCompletion : public StreamFixture {};
class StreamSubmit : public StreamFixture, public ::testing::WithParamInterface<Path> {};
class StreamSubmitArgs : public StreamFixture {};

} // namespace

// ---------------------------------------------------------------- helCreateStream

TEST_F(StreamCreate, LanesAreLaneDescriptorsWithInvokeAndManage) {
	auto [a, b] = stream();
	EXPECT_NE(a, b);
	EXPECT_GT(a, 0);
	EXPECT_GT(b, 0);
	for (HelHandle h : {a, b}) {
		HelDescriptorInfo info = info_of(h);
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
			// count * sizeof(HelSgItem) runs past the end of user space (and past SIZE_MAX).
			{"an absurd count", items, std::size_t{1} << 59},
			{"a count that wraps", items, std::size_t{1} << 60},
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
	auto push2 = submit(a, {push_act(y, kHelRightsNull)});
	auto pull2 = submit(b, {pull_act(kHelRightsNull)});
	EXPECT_EQ(take_errors(push2), Errors{kHelErrNone});
	auto pulled2 = take(pull2);
	ASSERT_EQ(pulled2.size(), 1u);
	ASSERT_EQ(pulled2[0].error, kHelErrNone);
	EXPECT_EQ(info_of(pulled2[0].handle).rights, kHelRightsNull);
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
		HelDescriptorInfo info{-1, 0};
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
				helDescriptorInfo(result.handle, &seen.info);
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
