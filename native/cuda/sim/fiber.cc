#include "sim/fiber.h"

#include <cstdint>

namespace paralon {
namespace sim {

#if PARALON_SIM_FIBER_UCONTEXT

namespace {
// makecontext passes int arguments only: the pointers travel split in two halves.
void ucontext_trampoline(unsigned entry_lo, unsigned entry_hi, unsigned arg_lo, unsigned arg_hi) {
  auto entry = reinterpret_cast<void (*)(void*)>((uintptr_t(entry_hi) << 32) | entry_lo);
  void* arg = reinterpret_cast<void*>((uintptr_t(arg_hi) << 32) | arg_lo);
  entry(arg);
}
}  // namespace

void fiber_prepare(FiberContext* fiber, void* stack, size_t stack_bytes, void (*entry)(void*), void* arg) {
  getcontext(&fiber->context);
  fiber->context.uc_stack.ss_sp = stack;
  fiber->context.uc_stack.ss_size = stack_bytes;
  fiber->context.uc_link = nullptr;
  uintptr_t e = reinterpret_cast<uintptr_t>(entry), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&fiber->context, reinterpret_cast<void (*)()>(ucontext_trampoline), 4, unsigned(e),
              unsigned(e >> 32), unsigned(a), unsigned(a >> 32));
}

void fiber_switch(FiberContext* from, FiberContext* to) { swapcontext(&from->context, &to->context); }

#else

// paralon_sim_switch(void** save_sp, void* new_sp): pushes the SysV callee-saved registers, stores the
// stack pointer, loads the other one and pops the same frame. The MXCSR / x87 control words are not
// switched: no kernel changes rounding modes, and saving them would double the cost of a switch.
// A fresh fiber's frame "returns" into paralon_sim_fiber_start, which calls entry(arg) from r12/r13.
// Both symbols are local to this object file.
asm(R"(
  .text
  .p2align 4
  .type paralon_sim_switch,@function
paralon_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size paralon_sim_switch, .-paralon_sim_switch

  .p2align 4
  .type paralon_sim_fiber_start,@function
paralon_sim_fiber_start:
  endbr64
  movq %r13, %rdi
  callq *%r12
  ud2
  .size paralon_sim_fiber_start, .-paralon_sim_fiber_start
)");

extern "C" void paralon_sim_switch(void** save_sp, void* new_sp);
extern "C" void paralon_sim_fiber_start();

void fiber_prepare(FiberContext* fiber, void* stack, size_t stack_bytes, void (*entry)(void*), void* arg) {
  // Frame, from the top: [return address = fiber_start][rbp rbx r12 r13 r14 r15].
  // The return address sits at 8 mod 16, so fiber_start runs with rsp 16-aligned and its call gives
  // entry() the alignment the ABI promises.
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + stack_bytes) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = reinterpret_cast<uint64_t>(&paralon_sim_fiber_start);
  *--sp = 0;                                      // rbp
  *--sp = 0;                                      // rbx
  *--sp = reinterpret_cast<uint64_t>(entry);      // r12
  *--sp = reinterpret_cast<uint64_t>(arg);        // r13
  *--sp = 0;                                      // r14
  *--sp = 0;                                      // r15
  fiber->stack_pointer = sp;
}

void fiber_switch(FiberContext* from, FiberContext* to) { paralon_sim_switch(&from->stack_pointer, to->stack_pointer); }

#endif

}  // namespace sim
}  // namespace paralon
