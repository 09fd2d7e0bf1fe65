// posix_shell: a tiny shell on helsim's POSIX subsystem that runs `producer | upper` with fork,
// execve, a pipe and waitpid, then waits for a SIGINT another process sends it.
//
// Every program is a POSIX process (its own universe and address space, served by the POSIX
// server; docs/posix.md). The shell
//   1. installs a SIGINT handler, as an interactive shell does;
//   2. makes a pipe and forks twice: each child puts its end of the pipe at fd 1 or fd 0
//      (dup2), closes the pipe's own fds and execve()s its program; the shell closes both ends
//      (else `upper` would never see end of file) and waits for both children;
//   3. blocks SIGINT, forks a child that execs /bin/interrupt with the shell's pid, and waits
//      for the signal with sigsuspend (the signal cannot slip in between the check and the wait:
//      it stays pending while blocked) — the handler runs, sigsuspend returns -EINTR;
//   4. reaps the interrupter and exits 0 if every child exited 0.
// helsim's fork takes the child's entry (a simulated thread runs host code and cannot return
// twice); everything else is as in C on Linux, except that errors come back as negative errno
// values. The host runs the shell with every acceleration strategy on, then with them all off,
// and checks that the console output, the statuses and a clean end are the same.
// HELSIM_MODE=deterministic:<seed> runs it on one host thread under that seed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <helsim/machine.hpp>
#include <helsim/posix.hpp>

namespace px = helsim::posix;

namespace {

constexpr std::string_view kText = "hello from the producer\nthrough a pipe\n";

bool ok(long result, const char *program, const char *what) {
	if (result >= 0)
		return true;
	std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(static_cast<int>(-result)));
	return false;
}

bool write_all(int fd, std::string_view text) {
	while (!text.empty()) {
		ssize_t n = px::write(fd, text.data(), text.size());
		if (n <= 0)
			return false;
		text.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

int producer(int, char **) { return write_all(1, kText) ? 0 : 1; }

int upper(int, char **) {
	std::string text;
	char buffer[8];
	for (;;) {
		ssize_t n = px::read(0, buffer, sizeof buffer);
		if (!ok(n, "upper", "read"))
			return 1;
		if (n == 0)
			break; // every write end closed
		for (ssize_t i = 0; i < n; ++i)
			text.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(buffer[i]))));
	}
	return write_all(1, text) ? 0 : 1;
}

// argv[1]: the pid to send SIGINT to.
int interrupt(int argc, char **argv) {
	if (argc != 2)
		return 2;
	return ok(px::kill(static_cast<pid_t>(std::atoi(argv[1])), SIGINT), "interrupt", "kill") ? 0
																							 : 1;
}

// What a forked child of the shell does: put `from` at `to`, close the pipe, exec `path`.
struct Command {
	int pipe[2];
	int from, to;
	const char *path;
	char *argv[3];
};

int run_command(void *arg) {
	auto *command = static_cast<Command *>(arg);
	if (command->from >= 0 && !ok(px::dup2(command->from, command->to), command->path, "dup2"))
		return 126;
	if (command->pipe[0] >= 0) {
		px::close(command->pipe[0]);
		px::close(command->pipe[1]);
	}
	char *envp[] = {nullptr};
	int error = px::execve(command->path, command->argv, envp);
	ok(error, command->path, "execve"); // returns only on failure
	return 127;
}

std::atomic<int> interrupts{0};
void on_sigint(int) { interrupts.fetch_add(1); }

int shell(int, char **) {
	// 1. SIGINT handler.
	struct sigaction action {};
	action.sa_handler = on_sigint;
	if (!ok(px::sigaction(SIGINT, &action, nullptr), "sh", "sigaction"))
		return 1;

	// 2. producer | upper.
	int ends[2];
	if (!ok(px::pipe(ends), "sh", "pipe"))
		return 1;
	static Command left{{ends[0], ends[1]}, ends[1], 1, "/bin/producer",
			{const_cast<char *>("producer"), nullptr, nullptr}};
	static Command right{{ends[0], ends[1]}, ends[0], 0, "/bin/upper",
			{const_cast<char *>("upper"), nullptr, nullptr}};
	pid_t writer = px::fork(run_command, &left);
	pid_t reader = px::fork(run_command, &right);
	if (!ok(writer, "sh", "fork") || !ok(reader, "sh", "fork"))
		return 1;
	px::close(ends[0]);
	px::close(ends[1]);
	int failures = 0;
	for (pid_t child : {writer, reader}) {
		int status = 0;
		if (!ok(px::waitpid(child, &status, 0), "sh", "waitpid") || !WIFEXITED(status) ||
				WEXITSTATUS(status) != 0)
			++failures;
	}

	// 3. SIGINT from another process, waited for without a window to lose it.
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	if (!ok(px::sigprocmask(SIG_BLOCK, &block, &old), "sh", "sigprocmask"))
		return 1;
	static std::string pid_text = std::to_string(px::getpid());
	static Command killer{{-1, -1}, -1, -1, "/bin/interrupt",
			{const_cast<char *>("interrupt"), pid_text.data(), nullptr}};
	pid_t sender = px::fork(run_command, &killer);
	if (!ok(sender, "sh", "fork"))
		return 1;
	while (interrupts.load() == 0)
		if (px::sigsuspend(&old) != -EINTR) // returns only after a handler ran
			return 1;
	px::sigprocmask(SIG_SETMASK, &old, nullptr);

	// 4. Reap the interrupter.
	int status = 0;
	if (!ok(px::waitpid(sender, &status, 0), "sh", "waitpid") || !WIFEXITED(status) ||
			WEXITSTATUS(status) != 0)
		++failures;
	return failures;
}

struct Outcome {
	std::string console;
	int status = -1;
	int interrupts = 0;
	px::Counters counters;
	helsim::RunReport report;
};

Outcome run_shell(px::Options options) {
	Outcome out;
	interrupts = 0;
	helsim::Machine machine;
	options.console = [&out](std::string_view text) { out.console += text; };
	px::System system{machine, options};
	system.add_program("/bin/sh", shell);
	system.add_program("/bin/producer", producer);
	system.add_program("/bin/upper", upper);
	system.add_program("/bin/interrupt", interrupt);
	pid_t sh = system.spawn("/bin/sh", {"sh"});
	out.report = machine.run();
	out.status = system.has_exited(sh) ? system.exit_status(sh) : -1;
	out.interrupts = interrupts.load();
	out.counters = system.counters();
	return out;
}

bool check(const char *name, const Outcome &out) {
	std::string expected;
	for (char c : kText)
		expected.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
	bool good = true;
	auto expect = [&](bool condition, const std::string &what) {
		if (!condition)
			std::printf("%s: FAILED: %s\n", name, what.c_str());
		good = good && condition;
	};
	expect(out.status == 0, "shell status " + std::to_string(out.status));
	expect(out.console == expected, "console output:\n" + out.console);
	expect(out.interrupts == 1, "SIGINT handled " + std::to_string(out.interrupts) + " times");
	expect(out.counters.forks == 3 && out.counters.execs == 3, "three forks and three execs");
	expect(out.counters.processes_started == 4 && out.counters.processes_exited == 4,
			"four processes started and exited");
	expect(!out.report.stuck && out.report.leaks.empty() && out.report.operations_pending() == 0,
			"a clean end:\n" + out.report.to_string());
	return good;
}

} // namespace

int main() {
	Outcome on = run_shell({});
	Outcome off = run_shell({.supercalls = false,
			.file_table = false,
			.thread_page = false,
			.clock_page = false,
			.status_page = false,
			.batching = false,
			.fork_cow = false});
	std::printf("the shell's pipeline wrote to /dev/console:\n%s\n", on.console.c_str());
	std::printf("%-40s %10s %10s\n", "counters", "all on", "all off");
	auto row = [](const char *what, std::uint64_t a, std::uint64_t b) {
		std::printf("%-40s %10llu %10llu\n", what, static_cast<unsigned long long>(a),
				static_cast<unsigned long long>(b));
	};
	row("forks", on.counters.forks, off.counters.forks);
	row("execs", on.counters.execs, off.counters.execs);
	row("supercalls observed", on.counters.supercalls, off.counters.supercalls);
	row("POSIX server requests", on.counters.server_requests, off.counters.server_requests);
	row("client IPC submissions", on.counters.client_submissions, off.counters.client_submissions);
	row("signals delivered (upcalls)", on.counters.signals_delivered,
			off.counters.signals_delivered);
	bool good = check("all on", on) && check("all off", off);
	std::printf("%s\n", good ? "the shell ran and ended cleanly, both ways" : "FAILED");
	return good ? 0 : 1;
}
