// Testbench: runs vectors made by the golden model (tests/overlay/harness.py) through the top
// function and returns nonzero on any mismatch of status, output bytes or cycle count.
//
// Usage: tpq_tb VECTORS.bin. File: "TPQV", u32 version (1), u32 cases; per case: u32 nregs and
// nregs register words; four u64-length-prefixed byte blocks (weights+params, input, residual,
// expected output); u64 expected cycles (the Python cycle model); u32 expected status.
// Each port gets a heap buffer of exactly its length, so an overrun trips AddressSanitizer.
#include <cstdio>
#include <cstring>
#include <vector>

#include "tpq_layer.hpp"
#include "tpq_regs.h"

namespace {

struct Reader {
  FILE* f;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    ok = ok && std::fread(&v, sizeof(T), 1, f) == 1;  // little-endian host (x86, ARM)
    return v;
  }
  std::vector<uint8_t> block() {
    uint64_t n = get<uint64_t>();
    if (!ok || n > (1ull << 31)) {
      ok = false;
      return {};
    }
    std::vector<uint8_t> v(n);
    ok = ok && (n == 0 || std::fread(v.data(), 1, n, f) == n);
    return v;
  }
};

const uint8_t* ptr(const std::vector<uint8_t>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s VECTORS.bin\n", argv[0]);
    return 2;
  }
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) {
    std::perror(argv[1]);
    return 2;
  }
  Reader in{f};
  char magic[4];
  in.ok = std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "TPQV", 4) == 0;
  const uint32_t version = in.get<uint32_t>(), cases = in.get<uint32_t>();
  if (!in.ok || version != 1) {
    std::fprintf(stderr, "%s: not a version-1 TPQV vector file\n", argv[1]);
    return 2;
  }
  int failures = 0;
  for (uint32_t i = 0; i < cases; ++i) {
    const uint32_t nregs = in.get<uint32_t>();
    std::vector<uint32_t> regs(nregs);
    for (auto& r : regs) r = in.get<uint32_t>();
    const auto wgt = in.block(), fin = in.block(), res = in.block(), expected = in.block();
    const uint64_t want_cycles = in.get<uint64_t>();
    const uint32_t want_status = in.get<uint32_t>();
    if (!in.ok || nregs * 4u < TPQ_REGS_BYTES) {
      std::fprintf(stderr, "case %u: truncated vector file\n", i);
      return 2;
    }
    const tpq::Desc d = tpq::desc_from_regs(regs.data());
    std::vector<uint8_t> out(expected.size(), 0xA5);  // poison: every byte must be written
    tpq::g_count = tpq::Counters{};
    uint32_t status = 0xFFFFFFFFu;
    tpq_layer(ptr(wgt), ptr(fin), out.empty() ? nullptr : out.data(), ptr(res), d.mode, d.batch, d.in_h, d.in_w,
              d.in_c, d.out_h, d.out_w, d.out_c, d.kernel, d.stride, d.pad_top, d.pad_left, d.pad_bottom,
              d.pad_right, d.trits, d.in_type, d.out_type, d.res_type, d.has_res, d.res_mult, d.shift, d.lo, d.hi,
              d.wgt_bytes, d.in_pitch, d.out_pitch, &status);
    const uint64_t cycles = tpq::g_count.total();
    bool ok = status == want_status;
    if (status == tpq::OK) {
      const tpq::Extents e = tpq::extents(d);
      ok = ok && e.wgt == wgt.size() && e.in == fin.size() && e.res == res.size() && e.out == out.size();
      ok = ok && out == expected && cycles == want_cycles;
    }
    if (!ok) {
      size_t bad = 0;
      while (bad < out.size() && bad < expected.size() && out[bad] == expected[bad]) ++bad;
      std::printf("FAIL case %u: status %u (want %u), cycles %llu (want %llu), first differing byte %zu of %zu\n", i,
                  status, want_status, static_cast<unsigned long long>(cycles),
                  static_cast<unsigned long long>(want_cycles), bad, out.size());
      ++failures;
    }
  }
  std::fclose(f);
  std::printf("%s: %u cases, %d failed\n", failures ? "FAIL" : "PASS", cases, failures);
  return failures ? 1 : 0;
}
