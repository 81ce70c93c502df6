// Runtime CPU dispatch for the hand-written elementwise loops (distance epilogues, threshold
// tests).
//
// The extension is built without -march flags so that one wheel runs on any x86-64 CPU; functions
// marked OML_FAST_MULTIVERSION are compiled once per target below and the best one is picked at
// load time (GCC function multi-versioning through ifunc). Plain loops inside them auto-vectorise.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define OML_FAST_MULTIVERSION \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define OML_FAST_MULTIVERSION
#endif
