// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guard, so C++ would look for mangled names.
#pragma once

extern "C" {
#include <sys/pidfd.h>
}
