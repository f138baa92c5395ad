// Fibers for the simulator's threads: a stack and a saved context, switched cooperatively. On
// x86-64 a hand-written switch saves only the callee-saved registers and the FP control words
// (~5 ns); elsewhere ucontext is used, whose swapcontext makes a sigprocmask system call per switch.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) || defined(PARALON_SIM_UCONTEXT)
#define PARALON_SIM_FIBER_UCONTEXT 1
#include <ucontext.h>
#endif

namespace paralon {
namespace sim {

struct FiberContext {
#if PARALON_SIM_FIBER_UCONTEXT
  ucontext_t context;
#else
  void* stack_pointer = nullptr;
#endif
};

// Makes the next switch into `fiber` call entry(arg) on the given stack; entry must never return.
void fiber_prepare(FiberContext* fiber, void* stack, size_t stack_bytes, void (*entry)(void*), void* arg);
// Saves the running context in `from` and resumes `to`.
void fiber_switch(FiberContext* from, FiberContext* to);

}  // namespace sim
}  // namespace paralon
