// The kernel's half of ext::register_stream_action and ext::register_stream_pair
// (helsim/extension.hpp): src/machine_extensions.cpp finds the Machine's kernel and calls these,
// so that the kernel itself names no Machine.
#pragma once

#include <helsim/extension_kernel.hpp>

namespace helsim::kernel {

class Kernel;

// ext::register_stream_action on `kernel`, with the same checks and errors.
void add_stream_action(Kernel &kernel, int type, const char *name, ext::StreamResult result,
		ext::StreamDecodeFunction decode);
// ext::register_stream_pair on `kernel`, with the same checks and errors.
void add_stream_pair(Kernel &kernel, int first, int second, ext::StreamPairFunction pair);

} // namespace helsim::kernel
