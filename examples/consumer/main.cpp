// consumer: the smallest program that uses an installed helsim.
#include <cstdio>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

int main() {
	helsim::Machine machine;
	HelError error;
	{
		// While the attachment lives, this host thread is a simulated thread.
		auto attachment = machine.attach();
		error = helNop();
	}
	std::printf("helsim consumer: helNop returned %d (kHelErrNone is %d)\n", error, kHelErrNone);
	return error == kHelErrNone ? 0 : 1;
}
