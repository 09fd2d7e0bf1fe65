// Shared by the stream tests (stream_test.cpp, stream_outcomes_test.cpp): raw action makers,
// result parsing and the fixture.
//
// Most tests run on one attached host thread: every pairing happens synchronously while
// helDriveQueue processes the SQ, so the order of submissions is the order of pairing. The
// fixture's TearDown checks that every exchange completed exactly once, that the test looked
// at every completion, and that the machine ends with nothing pending and nothing leaked.
#pragma once

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

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace helsim::stream_test {

using namespace helsim::test;

namespace ipc = helsim::ipc;

inline constexpr std::uintptr_t kSubmitErrorContext = ~std::uintptr_t{0};

using Errors = std::vector<HelError>;

enum class Path { sq, legacy };

inline std::string path_name(const ::testing::TestParamInfo<Path> &info) {
	return info.param == Path::sq ? "Sq" : "Legacy";
}

inline std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// ---------------------------------------------------------------- raw actions

inline HelAction act(int type, std::uint32_t flags = 0) {
	HelAction a{};
	a.type = type;
	a.flags = flags;
	return a;
}
inline HelAction send_act(const void *buffer, std::size_t length, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionSendFromBuffer, flags);
	a.buffer = const_cast<void *>(buffer);
	a.length = length;
	return a;
}
inline HelAction sg_act(const HelSgItem *items, std::size_t count, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionSendFromBufferSg, flags);
	a.buffer = const_cast<HelSgItem *>(items);
	a.length = count;
	return a;
}
inline HelAction recv_buffer_act(void *buffer, std::size_t length, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionRecvToBuffer, flags);
	a.buffer = buffer;
	a.length = length;
	return a;
}
inline HelAction push_act(HelHandle handle, std::uint32_t exposed, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionPushDescriptor, flags);
	a.handle = handle;
	a.rights = exposed;
	return a;
}
inline HelAction pull_act(std::uint32_t required, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionPullDescriptor, flags);
	a.rights = required;
	return a;
}
inline HelAction imbue_act(HelHandle handle, std::uint32_t flags = 0) {
	HelAction a = act(kHelActionImbueCredentials, flags);
	a.handle = handle;
	return a;
}

inline std::vector<std::byte> sq_payload(HelHandle lane, std::span<const HelAction> actions,
		std::size_t count, std::uint32_t flags = 0) {
	HelSqExchangeMsgs header{lane, count, flags};
	std::vector<std::byte> out(sizeof(header) + actions.size_bytes());
	std::memcpy(out.data(), &header, sizeof(header));
	if (!actions.empty())
		std::memcpy(out.data() + sizeof(header), actions.data(), actions.size_bytes());
	return out;
}

inline std::vector<char> pattern(std::size_t n, unsigned seed) {
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
// exactly, each padded to 8 bytes. Extension actions of `length_types` write a HelLengthResult,
// those of `handle_types` a HelHandleResult, the others a HelSimpleResult.
inline std::vector<Result> parse_results(std::span<const HelAction> actions,
		std::span<const std::byte> payload, std::span<const int> length_types = {},
		std::span<const int> handle_types = {}) {
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
		auto listed = [&](std::span<const int> types) {
			return std::find(types.begin(), types.end(), a.type) != types.end();
		};
		int parsed_as = listed(length_types) ? kHelActionRecvToBuffer
				: listed(handle_types)       ? kHelActionPullDescriptor
											 : a.type;
		switch (parsed_as) {
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

inline Errors errors_of(const std::vector<Result> &results) {
	Errors out;
	for (const Result &r : results)
		out.push_back(r.error);
	return out;
}

inline helsim::MachineConfig with_cpus(unsigned n) {
	helsim::MachineConfig config;
	config.cpus = n;
	return config;
}

// ---------------------------------------------------------------- the fixture

class StreamFixture : public ::testing::Test {
protected:
	StreamFixture() : StreamFixture{with_cpus(1)} {}
	explicit StreamFixture(const helsim::MachineConfig &config) : machine_{config} {
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
			completed_[context] =
					parse_results(it->second, payload, length_result_types_, handle_result_types_);
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
	std::vector<int> length_result_types_; // extension actions that write a HelLengthResult
	std::vector<int> handle_result_types_; // extension actions that write a HelHandleResult
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

} // namespace helsim::stream_test
