// A randomized test of streams (src/kernel/ipc/stream.cpp) against a reference model of the
// pairing rules of hel-reference.md section 3, written here from the reference:
//   - items pair FIFO across the two lanes of a stream, strictly in submission order;
//   - dismiss cancels both sides with their ancillary lists (dismisser None, other Dismissed,
//     both dismissing: both Dismissed);
//   - offer/accept make a child stream; the ancillary lists continue on its lanes 0 and 1;
//   - send/recv size rules (128-byte RecvInline, RecvToBuffer maximum, > 4 KiB sends are
//     streamed, faults reported per side), imbue/extract, push/pull with exposed and
//     required rights, everything else TransmissionMismatch (with ancillary lists);
//   - lanes live while handles or in-flight items reference them; a dead lane or a shut-down
//     one ends its peer (EndOfLane) and a shut-down lane fails its own items (LaneShutdown);
//   - malformed action trees are IllegalArgs at submission.
// One attached thread submits random valid and invalid trees on both lanes of a stream and on
// the child streams it learns about, closes and shuts down lanes, and after every step checks
// that exactly the exchanges the model says completed did, each with the predicted results.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr int kSeeds = 200;
constexpr int kSteps = 40;
constexpr std::uintptr_t kSubmitErrorContext = ~std::uintptr_t{0};
constexpr std::uint32_t kLaneRights = kHelRightInvoke | kHelRightManage;
constexpr std::uint32_t kQueueRights = kHelRightRead | kHelRightWrite | kHelRightInvoke |
		kHelRightAssign | kHelRightWait | kHelRightSignal;
constexpr std::size_t kInlineMax = 128;
constexpr std::size_t kBufferedMax = 4096;
char *const kBadPointer = reinterpret_cast<char *>(16);

using Credentials = std::array<char, 16>;
using Rng = std::mt19937;

std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

int pick(Rng &rng, int n) { return std::uniform_int_distribution<int>{0, n - 1}(rng); }
bool chance(Rng &rng, double p) { return std::bernoulli_distribution{p}(rng); }
template <typename T, std::size_t N>
T pick_of(Rng &rng, const T (&options)[N]) {
	return options[pick(rng, static_cast<int>(N))];
}

const char *type_name(int type) {
	switch (type) {
	case kHelActionDismiss: return "dismiss";
	case kHelActionOffer: return "offer";
	case kHelActionAccept: return "accept";
	case kHelActionImbueCredentials: return "imbue";
	case kHelActionExtractCredentials: return "extract";
	case kHelActionSendFromBuffer: return "send";
	case kHelActionSendFromBufferSg: return "send_sg";
	case kHelActionRecvInline: return "recv_inline";
	case kHelActionRecvToBuffer: return "recv_buffer";
	case kHelActionPushDescriptor: return "push";
	case kHelActionPullDescriptor: return "pull";
	default: return "unknown";
	}
}

// ---------------------------------------------------------------- generated items

// What pushes push and imbues imbue (objects outside the model's streams).
enum Object { kThisThread, kToken, kQueue, kCredsLane, kObjects };

struct Item {
	int type = 0;
	bool want_lane = false;
	std::vector<Item> children;
	std::size_t length = 0;          // send length, RecvToBuffer maximum
	std::vector<std::size_t> pieces; // scatter-gather piece sizes
	bool bad = false;                // the (or one) buffer pointer faults
	int object = kThisThread;        // push: kToken/kQueue/kCredsLane; imbue: any but kQueue
	std::uint32_t rights = 0;        // push: exposed; pull: required
};

std::size_t random_size(Rng &rng) {
	static const std::size_t sizes[] = {0, 1, 17, 127, 128, 129, 1000, 4095, 4096, 4097, 20000};
	return pick_of(rng, sizes);
}

std::uint32_t random_exposed(Rng &rng) {
	static const std::uint32_t masks[] = {kHelRightsMax, kHelRightInvoke, kHelRightManage,
			kLaneRights, kHelRightRead | kHelRightWrite, kHelRightNull};
	return pick_of(rng, masks);
}

std::uint32_t random_required(Rng &rng) {
	static const std::uint32_t masks[] = {kHelRightNull, kHelRightInvoke, kHelRightManage,
			kLaneRights, kHelRightRead, kHelRightRead | kHelRightWrite};
	return pick_of(rng, masks);
}

Item random_item(Rng &rng, int depth);

std::vector<Item> random_list(Rng &rng, int depth, int min, int max) {
	std::vector<Item> list(static_cast<std::size_t>(min + pick(rng, max - min + 1)));
	for (Item &item : list)
		item = random_item(rng, depth);
	return list;
}

Item random_item(Rng &rng, int depth) {
	static const int types[] = {kHelActionSendFromBuffer, kHelActionSendFromBuffer,
			kHelActionSendFromBuffer, kHelActionSendFromBufferSg, kHelActionRecvInline,
			kHelActionRecvInline, kHelActionRecvToBuffer, kHelActionRecvToBuffer, kHelActionOffer,
			kHelActionOffer, kHelActionAccept, kHelActionAccept, kHelActionPushDescriptor,
			kHelActionPullDescriptor, kHelActionImbueCredentials, kHelActionExtractCredentials,
			kHelActionDismiss};
	Item item;
	item.type = pick_of(rng, types);
	switch (item.type) {
	case kHelActionSendFromBuffer:
		item.length = random_size(rng);
		item.bad = item.length > 0 && chance(rng, 0.05);
		break;
	case kHelActionSendFromBufferSg: {
		static const std::size_t sizes[] = {0, 3, 100, 3000};
		int n = pick(rng, 4);
		for (int i = 0; i < n; ++i)
			item.pieces.push_back(pick_of(rng, sizes));
		item.bad = chance(rng, 0.05);
		break;
	}
	case kHelActionRecvToBuffer:
		item.length = random_size(rng);
		item.bad = item.length > 0 && chance(rng, 0.05);
		break;
	case kHelActionPushDescriptor:
		item.object = kToken + pick(rng, 3);
		item.rights = random_exposed(rng);
		break;
	case kHelActionPullDescriptor: item.rights = random_required(rng); break;
	case kHelActionImbueCredentials: {
		static const int objects[] = {kThisThread, kToken, kCredsLane};
		item.object = pick_of(rng, objects);
		break;
	}
	case kHelActionOffer:
	case kHelActionAccept:
		item.want_lane = item.type == kHelActionOffer && chance(rng, 0.5);
		if (depth < 2 && chance(rng, 0.7))
			item.children = random_list(rng, depth + 1, 1, 3);
		break;
	default: break;
	}
	return item;
}

std::size_t send_length(const Item &item) {
	if (item.type == kHelActionSendFromBuffer)
		return item.length;
	std::size_t total = 0;
	for (std::size_t p : item.pieces)
		total += p;
	return total;
}

std::vector<Item> complement_list(Rng &rng, const std::vector<Item> &list, int depth);

// The item that pairs well with `item`, mostly; sometimes a near miss.
Item complement(Rng &rng, const Item &item, int depth) {
	if (chance(rng, 0.08))
		return random_item(rng, depth);
	Item c;
	switch (item.type) {
	case kHelActionSendFromBuffer:
	case kHelActionSendFromBufferSg: {
		std::size_t n = send_length(item);
		if (n <= kInlineMax + 1 && chance(rng, 0.5)) {
			c.type = kHelActionRecvInline;
		} else {
			c.type = kHelActionRecvToBuffer;
			std::size_t rooms[] = {n, n + 1, n ? n - 1 : 0, random_size(rng)};
			c.length = pick_of(rng, rooms);
			c.bad = c.length > 0 && chance(rng, 0.04);
		}
		break;
	}
	case kHelActionRecvInline:
	case kHelActionRecvToBuffer: {
		std::size_t room = item.type == kHelActionRecvInline ? kInlineMax : item.length;
		if (chance(rng, 0.15)) {
			c.type = kHelActionSendFromBufferSg;
			c.pieces = {room / 2, room - room / 2};
		} else {
			c.type = kHelActionSendFromBuffer;
			std::size_t lengths[] = {room, room, room + 1, room / 3, random_size(rng)};
			c.length = pick_of(rng, lengths);
			c.bad = c.length > 0 && chance(rng, 0.04);
		}
		break;
	}
	case kHelActionPushDescriptor:
		c.type = kHelActionPullDescriptor;
		c.rights = chance(rng, 0.6) ? (item.rights & random_required(rng)) : random_required(rng);
		break;
	case kHelActionPullDescriptor:
		c.type = kHelActionPushDescriptor;
		c.object = kToken + pick(rng, 3);
		c.rights = chance(rng, 0.6) ? kHelRightsMax : random_exposed(rng);
		break;
	case kHelActionImbueCredentials: c.type = kHelActionExtractCredentials; break;
	case kHelActionExtractCredentials: {
		static const int objects[] = {kThisThread, kToken, kCredsLane};
		c.type = kHelActionImbueCredentials;
		c.object = pick_of(rng, objects);
		break;
	}
	case kHelActionOffer:
	case kHelActionAccept:
		c.type = item.type == kHelActionOffer ? kHelActionAccept : kHelActionOffer;
		c.want_lane = c.type == kHelActionOffer && chance(rng, 0.5);
		if (!item.children.empty() || chance(rng, 0.2))
			c.children = complement_list(rng, item.children, depth + 1);
		break;
	default: return random_item(rng, depth); // against a dismiss anything goes
	}
	return c;
}

std::vector<Item> complement_list(Rng &rng, const std::vector<Item> &list, int depth) {
	std::vector<Item> out;
	for (const Item &item : list)
		out.push_back(complement(rng, item, depth));
	if (!out.empty() && chance(rng, 0.08))
		out.pop_back();
	else if (out.size() < 3 && chance(rng, 0.08))
		out.push_back(random_item(rng, std::max(depth, 2)));
	return out;
}

// ---------------------------------------------------------------- the model

class Model {
public:
	struct Node {
		int packet = -1;
		int type = 0;
		bool want_lane = false;
		const Item *item = nullptr; // what the generator made it from
		std::vector<int> children;
		// Request.
		std::string data;          // what a send sends
		std::size_t length = 0;    // send length
		bool buffered = false;     // copied at submission (<= 4 KiB, or scatter-gather)
		bool send_faults = false;  // the sender's memory faults
		std::size_t room = 0;      // RecvToBuffer maximum
		bool recv_faults = false;  // the receiver's buffer faults
		std::uint32_t rights = 0;  // push: effective rights; pull: required
		int pushed_type = 0;       // push: the descriptor type
		Credentials credentials{}; // imbue
		// The lane it travels on, once submitted.
		int stream = -1, side = -1;
		// Result.
		bool done = false;
		HelError error = kHelErrNone;
		int child_stream = -1, child_side = -1; // offer (want lane) / accept
		std::size_t result_length = 0;
		std::string received;
		Credentials extracted{};
		std::uint32_t pulled_rights = 0;
		int pulled_type = 0;
	};
	struct Packet {
		std::vector<int> nodes;
		std::size_t remaining = 0;
		bool complete = false;
		bool freed = false;
	};

	std::vector<Node> nodes;
	std::vector<Packet> packets;
	std::vector<int> completed_now; // packets completed since the last check

	int new_stream(int handles0, int handles1) {
		streams_.push_back({});
		streams_.back().refs[0] = handles0;
		streams_.back().refs[1] = handles1;
		return static_cast<int>(streams_.size()) - 1;
	}

	// A packet whose nodes were added (in flat order) from `first` on.
	int new_packet(int first) {
		Packet p;
		for (int i = first; i < static_cast<int>(nodes.size()); ++i) {
			p.nodes.push_back(i);
			nodes[static_cast<std::size_t>(i)].packet = static_cast<int>(packets.size());
		}
		p.remaining = p.nodes.size();
		packets.push_back(std::move(p));
		return static_cast<int>(packets.size()) - 1;
	}

	void submit(int stream, int side, const std::vector<int> &roots) {
		for (int n : roots)
			enqueue(stream, side, n);
		settle();
	}

	void close(int stream, int side) {
		--streams_[static_cast<std::size_t>(stream)].refs[side];
		settle();
	}

	void shutdown(int stream, int side) {
		Stream &s = streams_[static_cast<std::size_t>(stream)];
		s.shut[side] = true;
		fail_queue(stream, side, kHelErrLaneShutdown);
		fail_queue(stream, 1 - side, kHelErrEndOfLane);
		settle();
	}

	// The items waiting on a lane, oldest first.
	std::vector<int> queued(int stream, int side) const {
		const auto &q = streams_[static_cast<std::size_t>(stream)].queue[side];
		return {q.begin(), q.end()};
	}

	std::size_t pending_packets() const {
		std::size_t n = 0;
		for (const Packet &p : packets)
			n += !p.complete;
		return n;
	}

private:
	struct Stream {
		std::deque<int> queue[2];
		bool broken[2] = {false, false};
		bool shut[2] = {false, false};
		int refs[2] = {0, 0}; // handles + in-flight nodes
		bool dead[2] = {false, false};
	};
	std::vector<Stream> streams_;

	Node &node(int n) { return nodes[static_cast<std::size_t>(n)]; }

	void enqueue(int stream, int side, int n) {
		Stream &s = streams_[static_cast<std::size_t>(stream)];
		Node &x = node(n);
		x.stream = stream;
		x.side = side;
		++s.refs[side];
		int peer = 1 - side;
		if (s.shut[side]) {
			fail(n, kHelErrLaneShutdown);
		} else if (s.broken[peer] || s.shut[peer]) {
			fail(n, kHelErrEndOfLane);
		} else if (!s.queue[peer].empty()) {
			int other = s.queue[peer].front();
			s.queue[peer].pop_front();
			pair(n, other);
		} else {
			s.queue[side].push_back(n);
		}
	}

	void fail_queue(int stream, int side, HelError error) {
		auto &q = streams_[static_cast<std::size_t>(stream)].queue[side];
		while (!q.empty()) {
			int n = q.front();
			q.pop_front();
			fail(n, error);
		}
	}

	void finish(int n, HelError error) {
		Node &x = node(n);
		EXPECT_FALSE(x.done) << "model: node finished twice";
		x.done = true;
		x.error = error;
		Packet &p = packets[static_cast<std::size_t>(x.packet)];
		if (--p.remaining == 0) {
			p.complete = true;
			completed_now.push_back(x.packet);
		}
	}

	// A node that never paired fails with its whole ancillary list.
	void fail(int n, HelError error) {
		for (int c : node(n).children)
			fail(c, error);
		finish(n, error);
	}

	static bool is_send(int t) {
		return t == kHelActionSendFromBuffer || t == kHelActionSendFromBufferSg;
	}
	static bool is_recv(int t) { return t == kHelActionRecvInline || t == kHelActionRecvToBuffer; }

	void pair(int a, int b) {
		int ta = node(a).type, tb = node(b).type;
		auto is = [&](int x, int y) { return (ta == x && tb == y) || (ta == y && tb == x); };
		auto first = [&](int type) { return ta == type ? std::pair{a, b} : std::pair{b, a}; };

		if (ta == kHelActionDismiss || tb == kHelActionDismiss) {
			bool both = ta == tb;
			fail(a, ta == kHelActionDismiss && !both ? kHelErrNone : kHelErrDismissed);
			fail(b, tb == kHelActionDismiss && !both ? kHelErrNone : kHelErrDismissed);
		} else if (is(kHelActionOffer, kHelActionAccept)) {
			auto [o, c] = first(kHelActionOffer);
			bool want = node(o).want_lane;
			int child = new_stream(want ? 1 : 0, 1);
			if (want) {
				node(o).child_stream = child;
				node(o).child_side = 0;
			}
			node(c).child_stream = child;
			node(c).child_side = 1;
			for (int x : std::vector<int>{node(o).children})
				enqueue(child, 0, x);
			for (int x : std::vector<int>{node(c).children})
				enqueue(child, 1, x);
			finish(o, kHelErrNone);
			finish(c, kHelErrNone);
		} else if (is(kHelActionImbueCredentials, kHelActionExtractCredentials)) {
			auto [i, e] = first(kHelActionImbueCredentials);
			node(e).extracted = node(i).credentials;
			finish(i, kHelErrNone);
			finish(e, kHelErrNone);
		} else if (is(kHelActionPushDescriptor, kHelActionPullDescriptor)) {
			auto [push, pull] = first(kHelActionPushDescriptor);
			std::uint32_t rights = node(push).rights;
			bool ok = (rights & node(pull).rights) == node(pull).rights;
			if (ok) {
				node(pull).pulled_rights = rights;
				node(pull).pulled_type = node(push).pushed_type;
			}
			finish(push, kHelErrNone);
			finish(pull, ok ? kHelErrNone : kHelErrBadRights);
		} else if ((is_send(ta) && is_recv(tb)) || (is_send(tb) && is_recv(ta))) {
			int s = is_send(ta) ? a : b, r = is_send(ta) ? b : a;
			Node &send = node(s);
			Node &recv = node(r);
			std::size_t room = recv.type == kHelActionRecvInline ? kInlineMax : recv.room;
			if (send.length > room) {
				finish(s, kHelErrBufferTooSmall);
				finish(r, kHelErrBufferTooSmall);
			} else if (send.send_faults) {
				finish(s, kHelErrFault);
				finish(r, kHelErrRemoteFault);
			} else if (recv.recv_faults && send.length > 0) {
				finish(s, send.buffered ? kHelErrNone : kHelErrRemoteFault);
				finish(r, kHelErrFault);
			} else {
				recv.received = send.data;
				recv.result_length = send.length;
				finish(s, kHelErrNone);
				finish(r, kHelErrNone);
			}
		} else {
			fail(a, kHelErrTransmissionMismatch);
			fail(b, kHelErrTransmissionMismatch);
		}
	}

	// Frees completed packets (dropping their lane references) and ends lanes nothing
	// references any more, until nothing changes.
	void settle() {
		for (bool changed = true; changed;) {
			changed = false;
			for (Packet &p : packets) {
				if (!p.complete || p.freed)
					continue;
				p.freed = true;
				changed = true;
				for (int n : p.nodes)
					if (node(n).stream >= 0)
						--streams_[static_cast<std::size_t>(node(n).stream)].refs[node(n).side];
			}
			for (std::size_t i = 0; i < streams_.size(); ++i) {
				for (int side = 0; side < 2; ++side) {
					Stream &s = streams_[i];
					if (s.dead[side] || s.refs[side] > 0)
						continue;
					EXPECT_EQ(s.refs[side], 0) << "model: negative lane references";
					EXPECT_TRUE(s.queue[side].empty()) << "model: a dead lane has queued items";
					s.dead[side] = true;
					s.broken[side] = true;
					changed = true;
					fail_queue(static_cast<int>(i), 1 - side, kHelErrEndOfLane);
				}
			}
		}
	}
};

// ---------------------------------------------------------------- the harness

struct LaneHandle {
	HelHandle handle;
	int stream, side;
	bool open = true;
};

class ModelRun {
public:
	explicit ModelRun(unsigned seed) : rng_{seed}, machine_{config()} {
		attachment_ = machine_.attach();
		dispatcher_.emplace();
		// Objects outside the model, for pushes and imbues.
		EXPECT_EQ(helCreateToken(&token_), kHelErrNone);
		EXPECT_EQ(helCreateStream(&creds0_, &creds1_, 1), kHelErrNone);
		EXPECT_EQ(helGetCredentials(kHelThisThread, 0, credentials_[kThisThread].data()),
				kHelErrNone);
		EXPECT_EQ(helGetCredentials(creds0_, 0, credentials_[kCredsLane].data()), kHelErrNone);
		credentials_[kToken] = token_credentials();
		HelHandle l0, l1;
		EXPECT_EQ(helCreateStream(&l0, &l1, 0), kHelErrNone);
		int s = model_.new_stream(1, 1);
		lanes_.push_back({l0, s, 0});
		lanes_.push_back({l1, s, 1});
	}

	void play() {
		for (step_ = 0; step_ < kSteps && !::testing::Test::HasFatalFailure() &&
				!::testing::Test::HasNonfatalFailure();
				++step_)
			random_step();
		// Close every lane this side knows about: that must end everything, unless the
		// model says some exchange waits on a lane whose handle was never delivered.
		for (std::size_t i = 0; i < lanes_.size(); ++i)
			if (lanes_[i].open && !::testing::Test::HasFailure())
				close_lane(i);
		if (::testing::Test::HasFailure())
			return;
		std::size_t pending = model_.pending_packets();
		dispatcher_.reset();
		attachment_.reset();
		auto report = machine_.run();
		EXPECT_EQ(report.operations_pending(), pending) << report.to_string();
		if (pending == 0) {
			EXPECT_TRUE(report.leaks.empty()) << report.to_string();
		}
		if (pending)
			++stats().stuck_seeds;
	}

	struct Stats {
		std::size_t submissions = 0, rejected = 0, completed = 0, closes = 0, shutdowns = 0;
		std::size_t stuck_seeds = 0;
		std::map<HelError, std::size_t> errors;
	};
	static Stats &stats() {
		static Stats s;
		return s;
	}

private:
	static helsim::MachineConfig config() {
		helsim::MachineConfig c;
		c.cpus = 1;
		return c;
	}

	Credentials token_credentials() {
		// Learned once through the extra stream (a token's credentials have no getter).
		HelAction imbue{};
		imbue.type = kHelActionImbueCredentials;
		imbue.handle = token_;
		HelAction extract{};
		extract.type = kHelActionExtractCredentials;
		EXPECT_EQ(helSubmitAsync(creds0_, &imbue, 1, dispatcher_->queue(), 1, 0), kHelErrNone);
		EXPECT_EQ(helSubmitAsync(creds1_, &extract, 1, dispatcher_->queue(), 2, 0), kHelErrNone);
		Credentials c{};
		for (int i = 0; i < 2; ++i) {
			auto e = dispatcher_->poll();
			if (!e) {
				ADD_FAILURE() << "token credentials exchange did not complete";
				return c;
			}
			EXPECT_EQ(e->error(), kHelErrNone);
			if (e->context() == 2)
				std::memcpy(c.data(), e->as<HelCredentialsResult>().credentials, 16);
		}
		EXPECT_NE(c, Credentials{});
		return c;
	}

	std::vector<std::size_t> open_lanes() const {
		std::vector<std::size_t> out;
		for (std::size_t i = 0; i < lanes_.size(); ++i)
			if (lanes_[i].open)
				out.push_back(i);
		return out;
	}

	// The open handle of the other end of lane i, if this side holds one.
	std::optional<std::size_t> peer_of(std::size_t i) const {
		for (std::size_t j = 0; j < lanes_.size(); ++j)
			if (lanes_[j].open && lanes_[j].stream == lanes_[i].stream &&
					lanes_[j].side != lanes_[i].side)
				return j;
		return std::nullopt;
	}

	// The root lanes end only late in a run, so that most steps exercise a working stream.
	bool late() { return step_ >= kSteps * 3 / 4 && chance(rng_, 0.5); }

	void random_step() {
		auto open = open_lanes();
		if (open.empty())
			return;
		int r = pick(rng_, 100);
		if (r < 6) {
			// Close a lane; the root lanes rarely.
			std::size_t i =
					open[static_cast<std::size_t>(pick(rng_, static_cast<int>(open.size())))];
			if (i < 2 && !late())
				return;
			close_lane(i);
		} else if (r < 10) {
			std::size_t i =
					open[static_cast<std::size_t>(pick(rng_, static_cast<int>(open.size())))];
			if (i < 2 && !late())
				return;
			shutdown_lane(i);
		} else if (r < 22) {
			submit_invalid(open);
		} else {
			// Mostly the first two open lanes (the root stream while it lives).
			std::size_t choices = open.size();
			if (choices > 2 && chance(rng_, 0.6))
				choices = 2;
			std::size_t i = open[static_cast<std::size_t>(pick(rng_, static_cast<int>(choices)))];
			// Sometimes answer what waits on the other lane, which also brings the two lanes
			// back in step after a near miss.
			auto waiting = model_.queued(lanes_[i].stream, 1 - lanes_[i].side);
			if (!waiting.empty() && chance(rng_, 0.4)) {
				std::vector<Item> answer;
				for (int n : waiting)
					if (answer.size() < 3)
						answer.push_back(complement(rng_,
								*model_.nodes[static_cast<std::size_t>(n)].item, 0));
				submit(i, answer);
				return;
			}
			auto list = random_list(rng_, 0, 1, 3);
			submit(i, list);
			if (auto peer = peer_of(i); peer && chance(rng_, 0.85))
				submit(*peer, complement_list(rng_, list, 0));
		}
	}

	// ------------------------------------------------------------ building submissions

	struct Built {
		std::vector<HelAction> actions;
		std::vector<const Item *> items; // flat order
		std::string text;
	};

	void flatten(const std::vector<Item> &list, Built &out) {
		for (std::size_t i = 0; i < list.size(); ++i) {
			const Item &item = list[i];
			HelAction a{};
			a.type = item.type;
			if (i + 1 < list.size())
				a.flags |= kHelItemChain;
			if (!item.children.empty())
				a.flags |= kHelItemAncillary;
			if (item.want_lane)
				a.flags |= kHelItemWantLane;
			switch (item.type) {
			case kHelActionSendFromBuffer: {
				if (item.bad) {
					a.buffer = kBadPointer;
				} else {
					auto &buffer = buffers_.emplace_back(pattern(item.length));
					a.buffer = buffer.data();
				}
				a.length = item.length;
				break;
			}
			case kHelActionSendFromBufferSg: {
				auto &sg = sgs_.emplace_back();
				for (std::size_t k = 0; k < item.pieces.size(); ++k) {
					auto &buffer = buffers_.emplace_back(pattern(item.pieces[k]));
					bool bad = item.bad && k + 1 == item.pieces.size();
					sg.push_back({bad ? kBadPointer : buffer.data(), item.pieces[k]});
				}
				a.buffer = sg.data();
				a.length = sg.size();
				break;
			}
			case kHelActionRecvToBuffer: {
				if (item.bad) {
					a.buffer = kBadPointer;
				} else {
					auto &buffer = buffers_.emplace_back(item.length + 8, kCanary);
					a.buffer = buffer.data();
				}
				a.length = item.length;
				break;
			}
			case kHelActionPushDescriptor:
				a.handle = object_handle(item.object);
				a.rights = item.rights;
				break;
			case kHelActionPullDescriptor: a.rights = item.rights; break;
			case kHelActionImbueCredentials: a.handle = object_handle(item.object); break;
			default: break;
			}
			out.actions.push_back(a);
			out.items.push_back(&item);
			flatten(item.children, out);
		}
	}

	HelHandle object_handle(int object) const {
		switch (object) {
		case kToken: return token_;
		case kQueue: return dispatcher_->queue();
		case kCredsLane: return creds1_;
		default: return kHelThisThread;
		}
	}

	std::vector<char> pattern(std::size_t n) {
		std::vector<char> v(n);
		for (char &c : v)
			c = static_cast<char>('a' + pick(rng_, 26));
		return v;
	}

	static std::string describe(std::span<const HelAction> actions) {
		std::ostringstream os;
		for (const HelAction &a : actions) {
			os << type_name(a.type);
			if (a.type == kHelActionSendFromBuffer || a.type == kHelActionRecvToBuffer)
				os << "(" << a.length << (a.buffer == kBadPointer ? ",bad" : "") << ")";
			if (a.type == kHelActionPushDescriptor || a.type == kHelActionPullDescriptor)
				os << "(rights " << a.rights << ")";
			if (a.flags & kHelItemAncillary)
				os << "{A";
			if (a.flags & kHelItemWantLane)
				os << "W";
			if (a.flags & kHelItemChain)
				os << ",";
			else
				os << ";";
			os << " ";
		}
		return os.str();
	}

	// Model nodes for a built list; returns the root node indices.
	std::vector<int> model_nodes(const Built &built, int first) {
		std::vector<int> roots;
		std::vector<int> open{-1};
		for (std::size_t k = 0; k < built.actions.size(); ++k) {
			const HelAction &a = built.actions[k];
			const Item &item = *built.items[k];
			Model::Node n;
			n.item = &item;
			n.type = item.type;
			n.want_lane = item.want_lane;
			switch (item.type) {
			case kHelActionSendFromBuffer:
				n.length = item.length;
				n.buffered = item.length <= kBufferedMax;
				n.send_faults = item.bad;
				if (!item.bad)
					n.data.assign(static_cast<const char *>(a.buffer), item.length);
				break;
			case kHelActionSendFromBufferSg: {
				n.buffered = true;
				auto *sg = static_cast<const HelSgItem *>(a.buffer);
				for (std::size_t p = 0; p < a.length; ++p) {
					n.length += sg[p].length;
					if (sg[p].buffer == kBadPointer)
						n.send_faults = n.send_faults || sg[p].length > 0;
					else
						n.data.append(static_cast<const char *>(sg[p].buffer), sg[p].length);
				}
				break;
			}
			case kHelActionRecvToBuffer:
				n.room = item.length;
				n.recv_faults = item.bad;
				break;
			case kHelActionPushDescriptor: {
				static const std::uint32_t rights[] = {0, 0, kQueueRights, kLaneRights};
				static const int types[] = {0, kHelDescToken, kHelDescQueue, kHelDescLane};
				n.rights = rights[item.object] & item.rights;
				n.pushed_type = types[item.object];
				break;
			}
			case kHelActionPullDescriptor: n.rights = item.rights; break;
			case kHelActionImbueCredentials: n.credentials = credentials_[item.object]; break;
			default: break;
			}
			int index = first + static_cast<int>(k);
			int parent = open.back();
			if (!(a.flags & kHelItemChain))
				open.pop_back();
			if (a.flags & kHelItemAncillary)
				open.push_back(index);
			if (parent < 0)
				roots.push_back(index);
			else
				model_.nodes[static_cast<std::size_t>(parent)].children.push_back(index);
			model_.nodes.push_back(std::move(n));
		}
		return roots;
	}

	// ------------------------------------------------------------ steps

	// Hands one ExchangeMsgs to the kernel, by SQ or by the legacy syscall. Returns the
	// submission error.
	HelError hand_over(HelHandle lane, std::span<const HelAction> actions, std::uintptr_t context,
			std::size_t count) {
		if (chance(rng_, 0.25))
			return helSubmitAsync(lane, actions.data(), count, dispatcher_->queue(), context, 0);
		HelSqExchangeMsgs header{lane, count, 0};
		std::vector<std::byte> payload(sizeof(header) + actions.size_bytes());
		std::memcpy(payload.data(), &header, sizeof(header));
		if (!actions.empty())
			std::memcpy(payload.data() + sizeof(header), actions.data(), actions.size_bytes());
		dispatcher_->submit(kHelSubmitExchangeMsgs, context, std::span<const std::byte>{payload});
		dispatcher_->flush();
		HelError error = kHelErrNone;
		collect(&error);
		return error;
	}

	void submit(std::size_t lane, const std::vector<Item> &list) {
		if (!lanes_[lane].open || list.empty())
			return;
		generated_.push_back(std::make_unique<std::vector<Item>>(list));
		Built built;
		flatten(*generated_.back(), built);
		SCOPED_TRACE("step " + std::to_string(step_) + ": submit on lane " + std::to_string(lane) +
				": " + describe(built.actions));
		int first = static_cast<int>(model_.nodes.size());
		auto roots = model_nodes(built, first);
		int packet = model_.new_packet(first);
		std::uintptr_t context = next_context_++;
		contexts_[context] = {packet};
		actions_of_[packet] = built.actions;
		HelError e = hand_over(lanes_[lane].handle, built.actions, context, built.actions.size());
		EXPECT_EQ(e, kHelErrNone);
		++stats().submissions;
		// Kernel-buffered send data was copied: scribble over it.
		for (std::size_t k = 0; k < built.actions.size(); ++k) {
			const HelAction &a = built.actions[k];
			if (a.type == kHelActionSendFromBuffer && a.length <= kBufferedMax &&
					a.buffer != kBadPointer && a.length)
				std::memset(a.buffer, '#', a.length);
			if (a.type == kHelActionSendFromBufferSg)
				for (std::size_t p = 0; p < a.length; ++p) {
					auto *sg = static_cast<HelSgItem *>(a.buffer);
					if (sg[p].buffer != kBadPointer && sg[p].length)
						std::memset(sg[p].buffer, '#', sg[p].length);
				}
		}
		model_.submit(lanes_[lane].stream, lanes_[lane].side, roots);
		check();
	}

	void submit_invalid(const std::vector<std::size_t> &open) {
		std::size_t lane =
				open[static_cast<std::size_t>(pick(rng_, static_cast<int>(open.size())))];
		generated_.push_back(std::make_unique<std::vector<Item>>(random_list(rng_, 0, 1, 3)));
		Built built;
		flatten(*generated_.back(), built);
		auto &actions = built.actions;
		HelHandle handle = lanes_[lane].handle;
		std::size_t count = actions.size();
		HelError expected = kHelErrIllegalArgs;
		auto any = [&](auto pred) {
			std::vector<std::size_t> out;
			for (std::size_t k = 0; k < actions.size(); ++k)
				if (pred(actions[k]))
					out.push_back(k);
			return out;
		};
		auto one_of = [&](const std::vector<std::size_t> &v) {
			return v[static_cast<std::size_t>(pick(rng_, static_cast<int>(v.size())))];
		};
		auto is_branch = [](const HelAction &a) {
			return a.type == kHelActionOffer || a.type == kHelActionAccept;
		};
		std::string defect;
		switch (pick(rng_, 11)) {
		case 0:
			defect = "chain on the last item";
			actions.back().flags |= kHelItemChain;
			break;
		case 1: {
			auto chained = any([](const HelAction &a) { return a.flags & kHelItemChain; });
			if (chained.empty()) {
				defect = "chain on the last item";
				actions.back().flags |= kHelItemChain;
			} else {
				defect = "a chain flag dropped";
				actions[one_of(chained)].flags &= ~kHelItemChain;
			}
			break;
		}
		case 2: {
			defect = "a chain flag added";
			auto closing = any([](const HelAction &a) { return !(a.flags & kHelItemChain); });
			actions[one_of(closing)].flags |= kHelItemChain;
			break;
		}
		case 3: {
			auto leaves = any([&](const HelAction &a) { return !is_branch(a); });
			auto chained_leaves = any(
					[&](const HelAction &a) { return !is_branch(a) && (a.flags & kHelItemChain); });
			if (!chained_leaves.empty() && chance(rng_, 0.5)) {
				// Chain -> Ancillary keeps the link stack balanced: the tree is well formed
				// except that a leaf now has an ancillary list.
				defect = "a chained leaf turned into a parent";
				HelAction &a = actions[one_of(chained_leaves)];
				a.flags = (a.flags & ~kHelItemChain) | kHelItemAncillary;
			} else if (leaves.empty()) {
				defect = "unknown type";
				actions.back().type = 12;
			} else {
				defect = "ancillary on a leaf";
				actions[one_of(leaves)].flags |= kHelItemAncillary;
			}
			break;
		}
		case 4: {
			defect = "want-lane on a non-offer";
			auto others = any([](const HelAction &a) { return a.type != kHelActionOffer; });
			if (others.empty())
				actions.back().type = kHelActionAccept;
			actions[others.empty() ? actions.size() - 1 : one_of(others)].flags |= kHelItemWantLane;
			break;
		}
		case 5: {
			static const std::uint32_t stray[] = {1u << 2, 1u << 3, 1u << 8, 1u << 15, 1u << 17,
					1u << 31};
			defect = "stray flag";
			actions[static_cast<std::size_t>(pick(rng_, static_cast<int>(actions.size())))].flags |=
					pick_of(rng_, stray);
			break;
		}
		case 6: {
			static const int unknown[] = {0, 12, 13, 255, -5};
			defect = "unknown type";
			actions[static_cast<std::size_t>(pick(rng_, static_cast<int>(actions.size())))].type =
					pick_of(rng_, unknown);
			break;
		}
		case 7: {
			auto parents = any([](const HelAction &a) { return a.flags & kHelItemAncillary; });
			if (parents.empty()) {
				defect = "count 0";
				count = 0;
			} else {
				defect = "an ancillary flag dropped";
				actions[one_of(parents)].flags &= ~kHelItemAncillary;
			}
			break;
		}
		case 8: {
			std::vector<std::size_t> closed;
			for (std::size_t i = 0; i < lanes_.size(); ++i)
				if (!lanes_[i].open)
					closed.push_back(i);
			if (closed.empty()) {
				defect = "count 0";
				count = 0;
			} else {
				defect = "a closed lane handle";
				handle = lanes_[one_of(closed)].handle;
				expected = kHelErrNoDescriptor;
			}
			break;
		}
		case 9: {
			defect = "imbue of a lane without credentials";
			actions.back().flags |= kHelItemChain;
			HelAction imbue{};
			imbue.type = kHelActionImbueCredentials;
			imbue.handle = lanes_[0].handle;
			if (!lanes_[0].open)
				expected = kHelErrNoDescriptor;
			// Append to the root list: the item that closed it now chains to the imbue. For a
			// list that ends inside an ancillary list this keeps it malformed either way, so
			// only use a flat list.
			if (any([&](const HelAction &a) { return a.flags & kHelItemAncillary; }).empty()) {
				actions.push_back(imbue);
			} else {
				actions.back().flags &= ~kHelItemChain;
				defect = "count 0";
				count = 0;
				expected = kHelErrIllegalArgs;
			}
			break;
		}
		default: {
			auto pushes =
					any([](const HelAction &a) { return a.type == kHelActionPushDescriptor; });
			if (pushes.empty()) {
				defect = "count 0";
				count = 0;
			} else {
				defect = "push of an unknown handle";
				actions[one_of(pushes)].handle = 0x7654321;
				expected = kHelErrNoDescriptor;
			}
			break;
		}
		}
		if (count)
			count = actions.size();
		SCOPED_TRACE("step " + std::to_string(step_) + ": invalid (" + defect + ") on lane " +
				std::to_string(lane) + ": " + describe(std::span{actions}.first(count)));
		std::uintptr_t context = next_context_++;
		rejected_.insert(context);
		HelError e = hand_over(handle, actions, context, count);
		EXPECT_EQ(e, expected);
		++stats().rejected;
		check();
	}

	void close_lane(std::size_t i) {
		SCOPED_TRACE("step " + std::to_string(step_) + ": close lane " + std::to_string(i));
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lanes_[i].handle), kHelErrNone);
		lanes_[i].open = false;
		model_.close(lanes_[i].stream, lanes_[i].side);
		++stats().closes;
		check();
	}

	void shutdown_lane(std::size_t i) {
		SCOPED_TRACE("step " + std::to_string(step_) + ": shut down lane " + std::to_string(i));
		EXPECT_EQ(helShutdownLane(lanes_[i].handle), kHelErrNone);
		model_.shutdown(lanes_[i].stream, lanes_[i].side);
		++stats().shutdowns;
		check();
	}

	// ------------------------------------------------------------ checking

	// Reads every completion there is. A submission error element (context ~0) is stored in
	// *submit_error if given, else it is a failure.
	void collect(HelError *submit_error = nullptr) {
		dispatcher_->flush();
		while (auto element = dispatcher_->poll()) {
			std::uintptr_t context = element->context();
			if (context == kSubmitErrorContext) {
				if (submit_error && *submit_error == kHelErrNone)
					*submit_error = element->error();
				else
					ADD_FAILURE() << "unexpected submission error " << element->error();
				continue;
			}
			EXPECT_FALSE(rejected_.count(context)) << "a rejected submission completed";
			auto it = contexts_.find(context);
			if (it == contexts_.end()) {
				ADD_FAILURE() << "completion for an unknown or completed context " << context;
				continue;
			}
			auto payload = element->payload();
			arrived_[it->second.packet] = {payload.begin(), payload.end()};
			contexts_.erase(it);
		}
	}

	// Compares what arrived with what the model completed.
	void check() {
		collect();
		std::set<int> expected(model_.completed_now.begin(), model_.completed_now.end());
		model_.completed_now.clear();
		std::set<int> got;
		for (auto &[packet, bytes] : arrived_)
			got.insert(packet);
		EXPECT_EQ(got, expected) << "the exchanges that completed differ from the model";
		for (auto &[packet, bytes] : arrived_)
			if (expected.count(packet))
				check_packet(packet, bytes);
		arrived_.clear();
		stats().completed += got.size();
	}

	void check_packet(int packet, const std::vector<std::byte> &bytes) {
		const auto &p = model_.packets[static_cast<std::size_t>(packet)];
		const std::vector<HelAction> *actions = &actions_of_.at(packet);
		SCOPED_TRACE("exchange " + describe(*actions));
		std::size_t at = 0;
		auto read = [&](void *out, std::size_t n) {
			if (at + n > bytes.size()) {
				ADD_FAILURE() << "completion element too short";
				return false;
			}
			std::memcpy(out, bytes.data() + at, n);
			return true;
		};
		for (std::size_t k = 0; k < p.nodes.size(); ++k) {
			const Model::Node &n = model_.nodes[static_cast<std::size_t>(p.nodes[k])];
			const HelAction &a = (*actions)[k];
			SCOPED_TRACE("item " + std::to_string(k) + " (" + type_name(n.type) + ")");
			++stats().errors[n.error];
			switch (n.type) {
			case kHelActionOffer:
			case kHelActionAccept:
			case kHelActionPullDescriptor: {
				HelHandleResult r;
				if (!read(&r, sizeof(r)))
					return;
				at += sizeof(r);
				EXPECT_EQ(r.error, n.error);
				if (r.error != kHelErrNone || n.error != kHelErrNone)
					break;
				if (n.type == kHelActionPullDescriptor) {
					helsim::ext::DescriptorInfo info{-1, 0};
					EXPECT_EQ(helsim::ext::describe_descriptor(r.handle, info), kHelErrNone);
					EXPECT_EQ(info.type, n.pulled_type);
					EXPECT_EQ(info.rights, n.pulled_rights);
					EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, r.handle), kHelErrNone);
				} else if (n.child_stream >= 0) {
					helsim::ext::DescriptorInfo info{-1, 0};
					EXPECT_EQ(helsim::ext::describe_descriptor(r.handle, info), kHelErrNone);
					EXPECT_EQ(info.type, kHelDescLane);
					EXPECT_EQ(info.rights, kLaneRights);
					lanes_.push_back({r.handle, n.child_stream, n.child_side});
				} else {
					EXPECT_EQ(r.handle, kHelNullHandle) << "an offer without want-lane got a lane";
				}
				break;
			}
			case kHelActionExtractCredentials: {
				HelCredentialsResult r;
				if (!read(&r, sizeof(r)))
					return;
				at += sizeof(r);
				EXPECT_EQ(r.error, n.error);
				if (n.error == kHelErrNone) {
					EXPECT_EQ(std::memcmp(r.credentials, n.extracted.data(), 16), 0);
				}
				break;
			}
			case kHelActionRecvInline: {
				HelInlineResultNoFlex r;
				if (!read(&r, sizeof(r)))
					return;
				EXPECT_EQ(r.error, n.error);
				EXPECT_EQ(r.length, n.result_length);
				if (r.length > kInlineMax || at + sizeof(r) + pad8(r.length) > bytes.size()) {
					ADD_FAILURE() << "bad inline length " << r.length;
					return;
				}
				std::string data(reinterpret_cast<const char *>(bytes.data() + at + sizeof(r)),
						r.length);
				if (n.error == kHelErrNone) {
					EXPECT_EQ(data, n.received);
				}
				at += sizeof(r) + pad8(r.length);
				break;
			}
			case kHelActionRecvToBuffer: {
				HelLengthResult r;
				if (!read(&r, sizeof(r)))
					return;
				at += sizeof(r);
				EXPECT_EQ(r.error, n.error);
				EXPECT_EQ(r.length, n.result_length);
				if (a.buffer != kBadPointer) {
					const char *buffer = static_cast<const char *>(a.buffer);
					std::size_t written = n.error == kHelErrNone ? n.result_length : 0;
					EXPECT_EQ(std::string(buffer, written), n.received);
					EXPECT_EQ(std::string(buffer + written, a.length + 8 - written),
							std::string(a.length + 8 - written, kCanary))
							<< "the receive buffer was written beyond the message";
				}
				break;
			}
			default: {
				HelSimpleResult r;
				if (!read(&r, sizeof(r)))
					return;
				at += sizeof(r);
				EXPECT_EQ(r.error, n.error);
				break;
			}
			}
		}
		EXPECT_EQ(at, bytes.size()) << "the completion element is longer than its results";
	}

	static constexpr char kCanary = '~';

	Rng rng_;
	helsim::Machine machine_;
	std::unique_ptr<helsim::Attachment> attachment_;
	std::optional<helsim::Dispatcher> dispatcher_;
	Model model_;
	std::vector<LaneHandle> lanes_;
	HelHandle token_ = kHelNullHandle, creds0_ = kHelNullHandle, creds1_ = kHelNullHandle;
	std::array<Credentials, kObjects> credentials_{};
	std::deque<std::vector<char>> buffers_;
	std::deque<std::vector<HelSgItem>> sgs_;
	std::vector<std::unique_ptr<std::vector<Item>>> generated_;
	struct Submitted {
		int packet;
	};
	std::map<std::uintptr_t, Submitted> contexts_;
	std::map<int, std::vector<HelAction>> actions_of_;
	std::map<int, std::vector<std::byte>> arrived_;
	std::set<std::uintptr_t> rejected_;
	std::uintptr_t next_context_ = 0x100;
	int step_ = 0;
};

} // namespace

TEST(StreamModel, RandomActionTreesMatchTheReferenceModel) {
	for (unsigned seed = 1; seed <= kSeeds; ++seed) {
		SCOPED_TRACE("seed " + std::to_string(seed));
		ModelRun run{seed};
		run.play();
		if (::testing::Test::HasFailure()) {
			std::printf("stream model: first failing seed %u\n", seed);
			break;
		}
	}
	auto &s = ModelRun::stats();
	std::printf("stream model: %zu submissions (%zu rejected), %zu completions, %zu closes, "
				"%zu shutdowns, %zu seeds ended with exchanges the model says wait forever\n",
			s.submissions, s.rejected, s.completed, s.closes, s.shutdowns, s.stuck_seeds);
	std::printf("stream model: item results:");
	for (auto &[error, count] : s.errors)
		std::printf(" %d:%zu", error, count);
	std::printf("\n");
	// The generator reaches every outcome the model knows.
	for (HelError e : {kHelErrNone, kHelErrBufferTooSmall, kHelErrLaneShutdown, kHelErrEndOfLane,
				 kHelErrFault, kHelErrTransmissionMismatch, kHelErrDismissed, kHelErrRemoteFault,
				 kHelErrBadRights})
		EXPECT_GT(s.errors[e], 0u) << "no item ended with HelError " << e;
}
