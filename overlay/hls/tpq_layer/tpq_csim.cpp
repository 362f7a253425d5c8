// C-simulation ABI: the entry point the runtime's SimulatedDevice calls through ctypes when the
// driver writes ap_start (docs/overlay.md "C-simulation ABI").
//
//   int tpq_csim_start(const uint32_t* regs, uint32_t nregs, uint8_t* ddr, uint64_t ddr_base,
//                      uint64_t ddr_size, uint64_t* cycles);
//
// regs[i] is the 32-bit register word at byte offset 4*i (offsets from tpq_regs.h, generated
// from regmap.json); 64-bit addresses are two words, low first. Every byte range the layer will
// touch is checked against [ddr_base, ddr_base + ddr_size) before the kernel runs, so a bad
// address returns BAD_ADDRESS (4) instead of faulting. Runs the top function once (one layer),
// returns its status (5 when nregs is too small) and stores the counted cycles in *cycles: the
// iterations of every loop plus its pipeline depth per entry (tpq_csim_loops has them by loop).
#include <cstring>

#include "tpq_layer.hpp"
#include "tpq_regs.h"

namespace {

uint64_t reg64(const uint32_t* regs, uint32_t offset) {
  return static_cast<uint64_t>(regs[offset / 4]) | (static_cast<uint64_t>(regs[offset / 4 + 1]) << 32);
}

// The host pointer for [addr, addr + len), or nullptr when it leaves DDR (len 0 is never read).
uint8_t* map(uint8_t* ddr, uint64_t base, uint64_t size, uint64_t addr, uint64_t len, bool& bad) {
  if (len == 0) return nullptr;
  if (addr < base || addr - base > size || len > size - (addr - base)) {
    bad = true;
    return nullptr;
  }
  return ddr + (addr - base);
}

}  // namespace

namespace tpq {

Desc desc_from_regs(const uint32_t* regs) {
  auto r32 = [regs](uint32_t offset) { return regs[offset / 4]; };
  auto s32 = [regs](uint32_t offset) { return static_cast<int32_t>(regs[offset / 4]); };
  return Desc{r32(TPQ_REG_mode),       r32(TPQ_REG_batch),     r32(TPQ_REG_in_h),      r32(TPQ_REG_in_w),
              r32(TPQ_REG_in_c),       r32(TPQ_REG_out_h),     r32(TPQ_REG_out_w),     r32(TPQ_REG_out_c),
              r32(TPQ_REG_kernel),     r32(TPQ_REG_stride),    r32(TPQ_REG_pad_top),   r32(TPQ_REG_pad_left),
              r32(TPQ_REG_pad_bottom), r32(TPQ_REG_pad_right), r32(TPQ_REG_trits),     r32(TPQ_REG_in_type),
              r32(TPQ_REG_out_type),   r32(TPQ_REG_res_type),  r32(TPQ_REG_has_res),   s32(TPQ_REG_res_mult),
              r32(TPQ_REG_shift),      s32(TPQ_REG_lo),        s32(TPQ_REG_hi),        r32(TPQ_REG_wgt_bytes),
              r32(TPQ_REG_in_pitch),   r32(TPQ_REG_out_pitch)};
}

}  // namespace tpq

extern "C" {

const char* tpq_csim_board(void) { return TPQ_BOARD; }

// The loop table's labels, in counter order: tpq_csim_loop_name(i) for i < tpq_csim_loop_count().
uint32_t tpq_csim_loop_count(void) { return tpq::N_LOOPS; }
const char* tpq_csim_loop_name(uint32_t i) { return i < tpq::N_LOOPS ? tpq::LOOP_NAMES[i] : ""; }
uint32_t tpq_csim_loop_depth(uint32_t i) { return i < tpq::N_LOOPS ? tpq::DEPTH[i] : 0; }

// The last run on this thread: iterations and entries of every loop (tpq_csim_loop_count each).
void tpq_csim_loops(uint64_t* iters, uint64_t* entries) {
  std::memcpy(iters, tpq::g_count.iters, sizeof(tpq::g_count.iters));
  std::memcpy(entries, tpq::g_count.entries, sizeof(tpq::g_count.entries));
}

int tpq_csim_start(const uint32_t* regs, uint32_t nregs, uint8_t* ddr, uint64_t ddr_base, uint64_t ddr_size,
                   uint64_t* cycles) {
  tpq::g_count = tpq::Counters{};
  *cycles = 0;
  if (nregs * 4u < TPQ_REGS_BYTES) return 5;
  const tpq::Desc d = tpq::desc_from_regs(regs);
  uint32_t status = tpq::check_desc(d);
  if (status != tpq::OK) return static_cast<int>(status);
  const tpq::Extents e = tpq::extents(d);
  bool bad = false;
  const uint8_t* wgt = map(ddr, ddr_base, ddr_size, reg64(regs, TPQ_REG_wgt_addr), e.wgt, bad);
  const uint8_t* fin = map(ddr, ddr_base, ddr_size, reg64(regs, TPQ_REG_in_addr), e.in, bad);
  uint8_t* fout = map(ddr, ddr_base, ddr_size, reg64(regs, TPQ_REG_out_addr), e.out, bad);
  const uint8_t* res = map(ddr, ddr_base, ddr_size, reg64(regs, TPQ_REG_res_addr), e.res, bad);
  if (bad) return tpq::BAD_ADDRESS;
  tpq_layer(wgt, fin, fout, res, d.mode, d.batch, d.in_h, d.in_w, d.in_c, d.out_h, d.out_w, d.out_c, d.kernel,
            d.stride, d.pad_top, d.pad_left, d.pad_bottom, d.pad_right, d.trits, d.in_type, d.out_type,
            d.res_type, d.has_res, d.res_mult, d.shift, d.lo, d.hi, d.wgt_bytes, d.in_pitch, d.out_pitch, &status);
  *cycles = tpq::g_count.total();
  return static_cast<int>(status);
}

}  // extern "C"
