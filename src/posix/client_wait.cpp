// How a process thread waits: for its own completions only, cancelling what blocks when a
// signal arrives (EINTR), inside Managarm's SignalGuard (docs/posix-eintr.md).
#include <algorithm>
#include <atomic>

#include "client.hpp"

namespace helsim::posix::detail {

namespace {

std::atomic_ref<std::uint32_t> signal_flag(ClientThread &t) {
	return std::atomic_ref<std::uint32_t>{t.data.thread_page->global_signal_flag};
}

// A signal arrived since the call began: the server deferred one (the thread page's flag is
// at 2), or, with no thread page, a handler ran at an interrupt of the wait.
bool signalled(ClientThread &t, const Cancel &cancel) {
	if (t.data.thread_page && signal_flag(t).load(std::memory_order_acquire) == 2)
		return true;
	return t.handlers_run != cancel.handlers_before;
}

// Asks the call's server to cancel it. The call's own completion still comes, and says what
// was done.
void send_cancel(ClientThread &t, const Cancel &cancel) {
	switch (cancel.via) {
	case Cancel::Via::posix_lane:
		if (supercalls(t))
			supercall(protocol::kSuperCancel, cancel.id);
		else
			request(t, make(protocol::kCancel, static_cast<std::int64_t>(cancel.id)));
		break;
	case Cancel::Via::file_lane: {
		// Managarm's exchangeMsgsSyncCancelViaLane: CancelOperation on the read's own lane.
		protocol::FileRequest head{{protocol::kFileCancel, 0}, 0, 0, 0, 0, cancel.id};
		exchange(t, cancel.lane, ipc::send_buffer(&head, sizeof(head)), ipc::imbue_credentials());
		break;
	}
	case Cancel::Via::clock:
		t.queue.submit(kHelSubmitCancel, t.next_tag++, HelSqCancel{cancel.id});
		t.queue.flush();
		break;
	}
}

} // namespace

Element wait_own(ClientThread &t, std::uintptr_t context, Cancel *cancel) {
	for (;;) {
		auto it = std::find_if(t.stashed.begin(), t.stashed.end(),
				[context](const Element &e) { return e.context() == context; });
		if (it != t.stashed.end()) {
			Element element = std::move(*it);
			t.stashed.erase(it);
			return element;
		}
		// Checked before every wait, as mlibc's _waitProgressFutex checks
		// cancellationRequested(): an alert that came before the wait is not missed.
		if (cancel && !cancel->sent && signalled(t, *cancel)) {
			cancel->sent = true;
			send_cancel(t, *cancel);
			continue; // the cancel's own calls may have stashed the completion
		}
		auto element = t.queue.wait();
		if (!element)
			continue; // an alert or an interrupt ended the wait
		if (element->context() == context || element->context() == ~std::uintptr_t{0})
			return std::move(*element);
		t.stashed.push_back(std::move(*element));
	}
}

void enter_signal_guard(ClientThread &t) {
	if (!t.data.thread_page || t.guard_depth++)
		return;
	signal_flag(t).store(1, std::memory_order_release);
}

void leave_signal_guard(ClientThread &t) {
	if (!t.data.thread_page || --t.guard_depth)
		return;
	if (signal_flag(t).exchange(0, std::memory_order_acq_rel) == 2)
		raise_deferred(t);
}

std::int64_t blocking_request(ClientThread &t, protocol::Request head, std::string_view tail,
		protocol::Response *out, bool restart, std::optional<std::uint64_t> since) {
	return interruptible(
			t, restart,
			[&](std::uint64_t handlers_before) {
				head.cancel_id = t.next_tag++;
				Cancel cancel{.id = head.cancel_id, .handlers_before = handlers_before};
				return cancellable_request(t, &cancel, head, tail, out);
			},
			since);
}

} // namespace helsim::posix::detail
