// fork, execve and waitpid inside a process.
#include <cerrno>
#include <string>

#include <helsim/posix.hpp>

#include "client.hpp"

namespace helsim::posix {

namespace detail {

Main fork_main(HelWord entry, HelWord arg, std::vector<Relocation> relocations) {
	auto shared = std::make_shared<const std::vector<Relocation>>(std::move(relocations));
	return [entry, arg, shared](int, char **) {
		if (ClientThread *t = self())
			t->relocations = shared.get(); // the Launch holding this lambda outlives the thread
		return reinterpret_cast<int (*)(void *)>(entry)(reinterpret_cast<void *>(arg));
	};
}

} // namespace detail

using detail::make;

pid_t fork(int (*child)(void *), void *arg) {
	HELSIM_POSIX_CLIENT(t);
	if (!child)
		return -EINVAL;
	auto entry = reinterpret_cast<HelWord>(child);
	auto argument = reinterpret_cast<HelWord>(arg);
	if (detail::supercalls(*t))
		return static_cast<pid_t>(detail::supercall(protocol::kSuperFork, entry, argument));
	return static_cast<pid_t>(detail::request(*t,
			make(protocol::kFork, static_cast<std::int64_t>(entry),
					static_cast<std::int64_t>(argument))));
}

void *fork_address(const void *address) {
	auto at = reinterpret_cast<std::uintptr_t>(address);
	detail::ClientThread *t = detail::self();
	if (t && t->relocations)
		for (const detail::Relocation &r : *t->relocations)
			if (at >= r.from && at - r.from < r.size)
				return reinterpret_cast<void *>(at - r.from + r.to);
	return const_cast<void *>(address);
}

// envp is accepted and ignored: helsim's programs take argv only (docs/posix-processes.md).
int execve(const char *path, char *const argv[], char *const[]) {
	HELSIM_POSIX_CLIENT(t);
	std::int64_t n = detail::path_length(path);
	if (n < 0)
		return static_cast<int>(n);
	// Managarm's argv area: the strings, each with its NUL.
	std::string area;
	for (std::size_t i = 0; argv && argv[i]; ++i) {
		area.append(argv[i]);
		area.push_back('\0');
		if (area.size() + static_cast<std::size_t>(n) + 1 > protocol::kMaxTail)
			return -E2BIG;
	}
	if (detail::supercalls(*t))
		return static_cast<int>(detail::supercall(protocol::kSuperExecve,
				reinterpret_cast<HelWord>(path), static_cast<HelWord>(n),
				reinterpret_cast<HelWord>(area.data()), area.size()));
	std::string tail{path, static_cast<std::size_t>(n)};
	tail.push_back('\0');
	tail += area;
	return static_cast<int>(detail::request(*t, make(protocol::kExecve), tail));
}

pid_t waitpid(pid_t pid, int *status, int options) {
	HELSIM_POSIX_CLIENT(t);
	protocol::Response response;
	// wait4 restarts after a handler installed with SA_RESTART (Linux).
	std::int64_t child = detail::blocking_request(*t, make(protocol::kWaitPid, pid, options), {},
			&response, true);
	if (child <= 0)
		return static_cast<pid_t>(child);
	// As Linux: the child is reaped already when its status cannot be stored.
	auto value = static_cast<int>(response.value2);
	if (status && !detail::copy_out(*t, status, &value, sizeof(value)))
		return -EFAULT;
	return static_cast<pid_t>(child);
}

pid_t wait(int *status) { return waitpid(-1, status, 0); }

} // namespace helsim::posix
