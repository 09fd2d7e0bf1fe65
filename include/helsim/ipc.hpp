// Building action lists and reading their results, in the manner of Managarm's helix_ng:
//
//   using namespace helsim::ipc;
//   auto request = offer(send_buffer(query, n), recv_inline());
//   auto exchange = exchange_sync(dispatcher, lane, request);
//   auto &[offered, sent, reply] = exchange.results;   // HandleResult, SimpleResult, InlineResult
//
// Items nest: the children of offer()/accept() form the ancillary list that runs on the new
// stream. Chain and ancillary flags are derived from the nesting. Header-only, over hel.h and
// dispatcher.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>

namespace helsim::ipc {

// ---------------------------------------------------------------- result types

struct SimpleResult {
	HelError error = kHelErrNone;
};
struct HandleResult {
	HelError error = kHelErrNone;
	HelHandle handle = kHelNullHandle;
};
struct CredentialsResult {
	HelError error = kHelErrNone;
	std::array<char, 16> credentials{};
};
// `data` points into the completion element: valid while the Exchange (its Element) lives.
struct InlineResult {
	HelError error = kHelErrNone;
	std::span<const std::byte> data;
	std::string_view text() const {
		return {reinterpret_cast<const char *>(data.data()), data.size()};
	}
};
struct LengthResult {
	HelError error = kHelErrNone;
	std::size_t length = 0;
};

namespace detail {
inline std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

inline void read(const std::byte *&at, SimpleResult &out) {
	HelSimpleResult r;
	std::memcpy(&r, at, sizeof(r));
	out.error = r.error;
	at += sizeof(r);
}
inline void read(const std::byte *&at, HandleResult &out) {
	HelHandleResult r;
	std::memcpy(&r, at, sizeof(r));
	out = {r.error, r.handle};
	at += sizeof(r);
}
inline void read(const std::byte *&at, CredentialsResult &out) {
	HelCredentialsResult r;
	std::memcpy(&r, at, sizeof(r));
	out.error = r.error;
	std::memcpy(out.credentials.data(), r.credentials, 16);
	at += sizeof(r);
}
inline void read(const std::byte *&at, InlineResult &out) {
	HelInlineResultNoFlex r;
	std::memcpy(&r, at, sizeof(r));
	out.error = r.error;
	out.data = {at + sizeof(r), r.length};
	at += sizeof(r) + pad8(r.length);
}
inline void read(const std::byte *&at, LengthResult &out) {
	HelLengthResult r;
	std::memcpy(&r, at, sizeof(r));
	out = {r.error, r.length};
	at += sizeof(r);
}
} // namespace detail

// ---------------------------------------------------------------- items

// A single action without children.
template <typename Result>
struct Leaf {
	HelAction action;
	using Results = std::tuple<Result>;
	static constexpr std::size_t kCount = 1;
};

// Offer or accept; Children form its ancillary list.
template <typename... Children>
struct Branch {
	HelAction action;
	std::tuple<Children...> children;
	using Results = decltype(std::tuple_cat(std::tuple<HandleResult>{},
			std::declval<typename Children::Results>()...));
	static constexpr std::size_t kCount = (1 + ... + Children::kCount);
};

inline HelAction make_action(int type) {
	HelAction a{};
	a.type = type;
	return a;
}

inline Leaf<SimpleResult> dismiss() { return {make_action(kHelActionDismiss)}; }

inline Leaf<SimpleResult> send_buffer(const void *buffer, std::size_t length) {
	auto a = make_action(kHelActionSendFromBuffer);
	a.buffer = const_cast<void *>(buffer);
	a.length = length;
	return {a};
}
inline Leaf<SimpleResult> send_buffer(std::string_view text) {
	return send_buffer(text.data(), text.size());
}

inline Leaf<SimpleResult> send_sg(std::span<const HelSgItem> items) {
	auto a = make_action(kHelActionSendFromBufferSg);
	a.buffer = const_cast<HelSgItem *>(items.data());
	a.length = items.size();
	return {a};
}

inline Leaf<InlineResult> recv_inline() { return {make_action(kHelActionRecvInline)}; }

inline Leaf<LengthResult> recv_buffer(void *buffer, std::size_t max_length) {
	auto a = make_action(kHelActionRecvToBuffer);
	a.buffer = buffer;
	a.length = max_length;
	return {a};
}

inline Leaf<SimpleResult> push_descriptor(HelHandle handle,
		uint32_t exposed_rights = kHelRightsMax) {
	auto a = make_action(kHelActionPushDescriptor);
	a.handle = handle;
	a.rights = exposed_rights;
	return {a};
}

inline Leaf<HandleResult> pull_descriptor(uint32_t required_rights = 0) {
	auto a = make_action(kHelActionPullDescriptor);
	a.rights = required_rights;
	return {a};
}

inline Leaf<SimpleResult> imbue_credentials(HelHandle handle = kHelThisThread) {
	auto a = make_action(kHelActionImbueCredentials);
	a.handle = handle;
	return {a};
}

inline Leaf<CredentialsResult> extract_credentials() {
	return {make_action(kHelActionExtractCredentials)};
}

template <typename... Children>
Branch<Children...> offer(Children... children) {
	return {make_action(kHelActionOffer), {children...}};
}
// Like offer(), but the result also carries this side's lane of the new stream.
template <typename... Children>
Branch<Children...> offer_want_lane(Children... children) {
	auto a = make_action(kHelActionOffer);
	a.flags = kHelItemWantLane;
	return {a, {children...}};
}
template <typename... Children>
Branch<Children...> accept(Children... children) {
	return {make_action(kHelActionAccept), {children...}};
}

// ---------------------------------------------------------------- flattening

namespace detail {
template <typename R>
void flatten(const Leaf<R> &leaf, HelAction *&out, bool chain) {
	*out = leaf.action;
	out->flags |= chain ? kHelItemChain : 0;
	++out;
}

template <typename... Items>
void flatten_list(HelAction *&out, const Items &...items);

template <typename... Children>
void flatten(const Branch<Children...> &branch, HelAction *&out, bool chain) {
	*out = branch.action;
	out->flags |= (chain ? kHelItemChain : 0) | (sizeof...(Children) ? kHelItemAncillary : 0);
	++out;
	std::apply([&](const auto &...children) { flatten_list(out, children...); }, branch.children);
}

template <typename... Items>
void flatten_list(HelAction *&out, const Items &...items) {
	std::size_t left = sizeof...(Items);
	(flatten(items, out, --left != 0), ...);
}

template <typename Tuple, std::size_t... I>
void read_all(const std::byte *at, Tuple &results, std::index_sequence<I...>) {
	(read(at, std::get<I>(results)), ...);
}
} // namespace detail

// The flat HelAction array of a root list.
template <typename... Items>
std::array<HelAction, (0 + ... + Items::kCount)> actions(const Items &...items) {
	std::array<HelAction, (0 + ... + Items::kCount)> flat{};
	HelAction *out = flat.data();
	detail::flatten_list(out, items...);
	return flat;
}

template <typename... Items>
using Results = decltype(std::tuple_cat(std::declval<typename Items::Results>()...));

// Reads a completion element of an exchange built from `Items`.
template <typename... Items>
Results<Items...> parse(const Element &element) {
	Results<Items...> results;
	detail::read_all(element.payload().data(), results,
			std::make_index_sequence<std::tuple_size_v<Results<Items...>>>{});
	return results;
}

// Submits the list through the dispatcher's SQ (kHelSubmitExchangeMsgs); it completes on
// the dispatcher's queue with `context`.
template <typename... Items>
void submit(Dispatcher &dispatcher, HelHandle lane, std::uintptr_t context, const Items &...items) {
	constexpr std::size_t kCount = (0 + ... + Items::kCount);
	struct {
		HelSqExchangeMsgs header;
		std::array<HelAction, kCount> actions;
	} request{{lane, kCount, 0}, actions(items...)};
	static_assert(sizeof(request) == sizeof(HelSqExchangeMsgs) + kCount * sizeof(HelAction));
	dispatcher.submit(kHelSubmitExchangeMsgs, context, request);
}

template <typename... Items>
struct Exchange {
	Element element;
	Results<Items...> results;
};

// Submits and waits for this exchange's completion. Completions of other operations that
// arrive first are handed to `other`.
template <typename Other, typename... Items>
Exchange<Items...> exchange_sync_with(Dispatcher &dispatcher, HelHandle lane, Other &&other,
		const Items &...items) {
	std::uintptr_t context = dispatcher.fresh_context();
	submit(dispatcher, lane, context, items...);
	Exchange<Items...> exchange{dispatcher.wait_for(context, other), {}};
	exchange.results = parse<Items...>(exchange.element);
	return exchange;
}

// Submits and waits; no other operation may be in flight on the dispatcher.
template <typename... Items>
Exchange<Items...> exchange_sync(Dispatcher &dispatcher, HelHandle lane, const Items &...items) {
	return exchange_sync_with(
			dispatcher, lane,
			[](Element &&other) {
				// The kernel reports a refused submission with context ~0.
				if (other.context() == ~std::uintptr_t{0})
					throw HelException{"kHelSubmitExchangeMsgs submission", other.error()};
				throw std::logic_error(
						"helsim::ipc::exchange_sync: an unrelated completion arrived");
			},
			items...);
}

} // namespace helsim::ipc
