// The host side: registering programs, spawning, reading statuses and counters, and starting
// the server process whenever there is work for it.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>

#include <helsim/extension.hpp>
#include <helsim/posix.hpp>

#include "server.hpp"
#include "state.hpp"
#include "tmpfs.hpp"

namespace helsim::posix {

namespace {

// 2026-01-01T00:00:00Z: deterministic runs start their realtime clock here.
constexpr std::int64_t kDeterministicEpochNs = 1'767'225'600'000'000'000;

void write_stdout(std::string_view text) {
	std::fwrite(text.data(), 1, text.size(), stdout);
	std::fflush(stdout);
}

} // namespace

Counters detail::AtomicCounters::snapshot() const {
	auto get = [](const std::atomic<std::uint64_t> &c) {
		return c.load(std::memory_order_relaxed);
	};
	Counters c;
	c.server_requests = get(server_requests);
	c.supercalls = get(supercalls);
	c.passthrough_requests = get(passthrough_requests);
	c.forwarded_requests = get(forwarded_requests);
	c.client_submissions = get(client_submissions);
	c.processes_started = get(processes_started);
	c.processes_exited = get(processes_exited);
	c.clock_page_updates = get(clock_page_updates);
	c.signals_sent = get(signals_sent);
	c.signals_delivered = get(signals_delivered);
	c.interrupts = get(interrupts);
	c.alerts = get(alerts);
	c.cancellations = get(cancellations);
	c.forks = get(forks);
	c.execs = get(execs);
	c.fork_pages_copied = get(fork_pages_copied);
	c.status_page_reads = get(status_page_reads);
	c.device_poll_requests = get(device_poll_requests);
	return c;
}

System::State::State(Machine &m, Options o) : machine{m}, options{std::move(o)} {
	if (!options.console)
		options.console = write_stdout;
	tmpfs = std::make_unique<detail::Tmpfs>(options.console);
	std::int64_t realtime = options.realtime_at_start_ns;
	if (!realtime)
		realtime = machine.config().mode == Mode::deterministic
				? kDeterministicEpochNs
				: std::chrono::duration_cast<std::chrono::nanoseconds>(
						  std::chrono::system_clock::now().time_since_epoch())
						  .count();
	// helGetClock starts near 0 when the machine starts.
	realtime_offset = realtime;
}

System::State::~State() = default;

pid_t System::State::allocate_pid() {
	std::lock_guard lock{mutex};
	pid_t pid = next_pid++;
	statuses[pid] = std::nullopt;
	return pid;
}

Main System::State::program(const std::string &path) const {
	std::lock_guard lock{mutex};
	auto it = programs.find(path);
	return it == programs.end() ? Main{} : it->second;
}

// The ablation's third point: gettid answered by a host callback on the calling thread, from
// the table of process threads the server keeps; every other supercall traps to the server.
// The callback holds the state weakly: a machine may outlive its System.
void System::State::answer_supercalls_inline() {
	std::weak_ptr<State> weak = shared_from_this();
	ext::set_supercall_handler(machine,
			[weak](ext::Caller &caller, std::uint32_t number, const HelWord *,
					HelWord *outs) -> HelError {
				constexpr auto kGetTid = static_cast<std::uint32_t>(kHelCallSuper) +
						static_cast<std::uint32_t>(protocol::kSuperGetTid);
				auto self = weak.lock();
				if (!self || number != kGetTid)
					return ext::kSupercallTrap;
				std::shared_lock lock{self->inline_mutex};
				auto it = self->tids.find(caller.credentials());
				if (it == self->tids.end())
					return ext::kSupercallTrap;
				outs[0] = static_cast<HelWord>(it->second);
				outs[1] = 0;
				return kHelErrNone;
			});
}

// The server is a simulated process of its own; it runs while processes live and stops by
// itself after the last one (Server::run). The shared_ptr keeps the state alive for it.
void System::State::start_server() {
	server_running = true;
	machine.spawn("posix-server", [self = shared_from_this()](std::span<const HelHandle>) {
		std::optional<detail::Executor> executor;
		try {
			executor.emplace();
		} catch (const HelException &) { // its queue: kHelErrNoMemory
			self->server_failed();
			return;
		}
		detail::Server server{*self, *executor};
		server.run();
	});
}

void System::State::server_failed() {
	std::lock_guard lock{mutex};
	for (const auto &spawn : pending)
		statuses[spawn.pid] = W_EXITCODE(127, 0);
	pending.clear();
	spawns_pending.store(false, std::memory_order_relaxed);
	server_running = false;
}

System::System(Machine &machine, Options options)
: state_{std::make_shared<State>(machine, std::move(options))} {
	if (state_->options.supercalls && state_->options.inline_supercalls)
		state_->answer_supercalls_inline();
}

System::~System() = default;

void System::add_program(std::string path, Main main) {
	if (path.empty() || path.front() != '/')
		throw std::invalid_argument("helsim::posix: a program's path must be absolute: " + path);
	if (!main)
		throw std::invalid_argument("helsim::posix: empty main for " + path);
	std::lock_guard lock{state_->mutex};
	if (!state_->programs.emplace(path, std::move(main)).second)
		throw std::invalid_argument("helsim::posix: a program is already registered at " + path);
}

void System::add_program(std::string path, MainWithArgs main) {
	if (!main)
		throw std::invalid_argument("helsim::posix: empty main for " + path);
	add_program(std::move(path), Main{[main = std::move(main)](int argc, char **argv) {
		return main(std::vector<std::string>(argv, argv + argc));
	}});
}

pid_t System::spawn(const std::string &path, std::vector<std::string> argv) {
	if (!state_->program(path))
		throw std::invalid_argument("helsim::posix: no program is registered at " + path);
	pid_t pid = state_->allocate_pid();
	std::lock_guard lock{state_->mutex};
	state_->pending.push_back({pid, path, std::move(argv)});
	state_->spawns_pending.store(true, std::memory_order_release);
	if (!state_->server_running)
		state_->start_server();
	return pid;
}

int System::exit_status(pid_t pid) const {
	std::lock_guard lock{state_->mutex};
	auto it = state_->statuses.find(pid);
	if (it == state_->statuses.end())
		throw std::out_of_range("helsim::posix: no process " + std::to_string(pid));
	if (!it->second)
		throw std::logic_error("helsim::posix: process " + std::to_string(pid) + " has not exited");
	return *it->second;
}

bool System::has_exited(pid_t pid) const {
	std::lock_guard lock{state_->mutex};
	auto it = state_->statuses.find(pid);
	return it != state_->statuses.end() && it->second.has_value();
}

Counters System::counters() const { return state_->counters.snapshot(); }

const Options &System::options() const { return state_->options; }

} // namespace helsim::posix
