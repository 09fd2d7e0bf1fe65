#include "async.hpp"

#include <stdexcept>
#include <string>

namespace helsim::posix::detail {

void Executor::run(const std::function<void()> &between) {
	for (;;) {
		while (!ready_.empty()) {
			auto handle = ready_.front();
			ready_.pop_front();
			handle.resume();
		}
		if (error_)
			std::rethrow_exception(std::exchange(error_, nullptr));
		if (between)
			between();
		if (!ready_.empty())
			continue;
		if (live_tasks_ == 0)
			return;
		dispatcher_.flush();
		auto element = dispatcher_.wait();
		if (!element)
			continue; // helAlertQueue: look at the mailbox again
		if (element->context() == ~std::uintptr_t{0})
			// The server submits only on handles it holds; a refused submission is a bug in it.
			throw std::logic_error("helsim::posix: the kernel refused a server submission, error " +
					std::to_string(element->error()));
		auto *slot = reinterpret_cast<Slot *>(element->context());
		slot->element = std::move(*element);
		slot->waiter.resume();
	}
}

} // namespace helsim::posix::detail
