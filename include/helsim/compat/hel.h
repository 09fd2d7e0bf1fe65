/* Managarm's <hel.h>, for code written against Managarm: the helsim::helsim target puts this
 * folder on the include path. */
#include <helsim/hel.h>
