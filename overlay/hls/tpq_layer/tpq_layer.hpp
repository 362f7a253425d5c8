// tpq_layer: one layer of a ternary, PE-wise pruned CNN per start (docs/overlay.md).
//
// A P x G PE array: the P PEs compute P consecutive output pixels (raster order) of the same
// output filter; each PE adds G lanes per cycle, and the current lane word of weights is
// broadcast to all PEs. The weight stream lists, per input-channel group, only the filters that
// keep it, so a pruned group costs no cycle on any PE. Multi-trit weights run plane by plane,
// MSB first, with part = 3*part + sum (x3 as shift + add): the MAC path has no multiplier.
//
// Board geometry comes from tpq_config.h (generated from overlay/boards/<board>.json) and
// register offsets from tpq_regs.h (generated from regmap.json); neither is edited by hand.
#pragma once

#include <cstdint>

#include "tpq_config.h"

namespace tpq {

constexpr int P = TPQ_P;
constexpr int G = TPQ_G;
constexpr int LANE_BYTES = G / 4;  // one lane word: G trits at 2 bits
constexpr int WBUF_BYTES = TPQ_WBUF_BYTES;
constexpr int IBUF_ELEMS = TPQ_IBUF_ELEMS;
constexpr int IBUF_READ = TPQ_IBUF_READ;  // input-buffer elements read per cycle
constexpr int MAX_K = TPQ_MAX_K;
constexpr int MAX_C = TPQ_MAX_C;
constexpr int PORT_BYTES = TPQ_PORT_BYTES;
constexpr int MAX_T = 5;
constexpr uint32_t MAX_DIM = 4096;
constexpr uint32_t MAX_BATCH = 65535;

enum Mode : uint32_t { MODE_CONV = 0, MODE_MAXPOOL = 1, MODE_GAP = 2 };
enum Elem : uint32_t { ELEM_U8 = 0, ELEM_I8 = 1, ELEM_I16 = 2 };
enum Status : uint32_t {
  OK = 0,
  BAD_DESCRIPTOR = 1,
  TOO_LARGE = 2,
  BAD_STREAM = 3,
  BAD_ADDRESS = 4,
};

// The layer descriptor, one field per AXI-Lite register (regmap.json).
struct Desc {
  uint32_t mode, batch;
  uint32_t in_h, in_w, in_c, out_h, out_w, out_c;
  uint32_t kernel, stride, pad, trits;
  uint32_t in_type, out_type, res_type, has_res;
  int32_t res_mult;
  uint32_t shift;
  int32_t lo, hi;
  uint32_t wgt_bytes;
};

// Bytes each m_axi port touches for a valid descriptor (the csim ABI bounds-checks these).
struct Extents {
  uint64_t wgt, in, out, res;
};

// Iterations the kernel's pipelined loops execute and the AXI beats it moves; the cycle model
// in host/ternpynq/overlay/cycles.py predicts exactly these numbers.
struct Counters {
  uint64_t compute, wgt_beats, in_beats, out_beats, res_beats;
  uint64_t total() const {
    uint64_t overlapped = compute;  // row loads and stores overlap compute (ping-pong buffers)
    if (in_beats > overlapped) overlapped = in_beats;
    if (out_beats > overlapped) overlapped = out_beats;
    if (res_beats > overlapped) overlapped = res_beats;
    return wgt_beats + overlapped;  // weight-tile loads stall the array
  }
};

#ifndef __SYNTHESIS__
extern thread_local Counters g_count;
#define TPQ_COUNT(field, n) (tpq::g_count.field += (n))
#else
#define TPQ_COUNT(field, n) ((void)0)
#endif

inline uint32_t elem_bytes(uint32_t t) { return t == ELEM_I16 ? 2 : 1; }
inline int32_t elem_lo(uint32_t t) { return t == ELEM_U8 ? 0 : t == ELEM_I8 ? -128 : -32768; }
inline int32_t elem_hi(uint32_t t) { return t == ELEM_U8 ? 255 : t == ELEM_I8 ? 127 : 32767; }
inline uint64_t beats(uint64_t bytes) { return (bytes + PORT_BYTES - 1) / PORT_BYTES; }

// The one accessor for feature-map elements in DDR or on-chip copies (NHWC, little-endian).
inline int32_t fm_load(const uint8_t* p, uint64_t idx, uint32_t t) {
  if (t == ELEM_U8) return p[idx];
  if (t == ELEM_I8) return static_cast<int8_t>(p[idx]);
  return static_cast<int16_t>(static_cast<uint16_t>(p[2 * idx] | (p[2 * idx + 1] << 8)));
}
inline void fm_store(uint8_t* p, uint64_t idx, uint32_t t, int32_t v) {
  if (t == ELEM_I16) {
    p[2 * idx] = static_cast<uint8_t>(v & 0xFF);
    p[2 * idx + 1] = static_cast<uint8_t>((v >> 8) & 0xFF);
  } else {
    p[idx] = static_cast<uint8_t>(v & 0xFF);
  }
}

// The one accessor for the weight stream's bit order: trit of lane l in a lane word
// (2-bit two's complement code, lane l at bits 2(l%4) of byte l/4). Code 0b10 is invalid.
inline int trit_code(const uint8_t* word, int l) { return (word[l >> 2] >> (2 * (l & 3))) & 3; }
inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline int32_t le32(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                              (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24));
}

// Groups along Cin and lane words per plane of group q: ceil(gc*k*k / G).
inline uint32_t groups(uint32_t cin) { return (cin + G - 1) / G; }
inline uint32_t group_channels(uint32_t cin, uint32_t q) {
  return cin - q * G < static_cast<uint32_t>(G) ? cin - q * G : G;
}
inline uint32_t group_words(uint32_t cin, uint32_t k, uint32_t q) {
  return (group_channels(cin, q) * k * k + G - 1) / G;
}

// Requantization exactly as ternpynq.runtime.requant.requantize (docs/numerics.md).
inline int32_t requant(int32_t acc, int32_t mult, int32_t bias, int32_t residual, const Desc& d) {
  int64_t t = (static_cast<int64_t>(acc) + bias) * mult;
  if (d.has_res) t += static_cast<int64_t>(residual) * d.res_mult;
  if (d.shift > 0) {
    t += static_cast<int64_t>(1) << (d.shift - 1);
    t = t >= 0 ? t >> d.shift : -((-t - 1) >> d.shift) - 1;  // floor, without relying on >> of negatives
  }
  return static_cast<int32_t>(t < d.lo ? d.lo : t > d.hi ? d.hi : t);
}

// On-chip ring of input rows: row r lives in slot r % rows. Rows arrive in increasing order
// as the pixel tiles advance, one burst per row, while earlier tiles compute.
struct RowBuffer {
  int16_t* buf;
  uint32_t rows, width, channels, type;
  int32_t next;  // the next input row to fetch

  void fetch_until(const uint8_t* image, int32_t last, uint32_t in_h) {
    if (last >= static_cast<int32_t>(in_h)) last = static_cast<int32_t>(in_h) - 1;
    const uint32_t row_elems = width * channels;
    for (; next <= last; ++next) {
      int16_t* slot = buf + static_cast<uint64_t>(next % rows) * row_elems;
      const uint64_t base = static_cast<uint64_t>(next) * row_elems;
      for (uint32_t e = 0; e < row_elems; ++e) {
#pragma HLS PIPELINE II=1
        slot[e] = static_cast<int16_t>(fm_load(image, base + e, type));
      }
      TPQ_COUNT(in_beats, beats(static_cast<uint64_t>(row_elems) * elem_bytes(type)));
    }
  }
  // Zero (conv padding) outside the image; callers that must ignore padding test inside() first.
  bool inside(int32_t y, int32_t x, uint32_t in_h) const {
    return y >= 0 && x >= 0 && y < static_cast<int32_t>(in_h) && x < static_cast<int32_t>(width);
  }
  int32_t at(int32_t y, int32_t x, uint32_t c) const {
    return buf[(static_cast<uint64_t>(y % rows) * width + x) * channels + c];
  }
};

// Input rows the row buffer must hold for one P-pixel tile of a k x k window at this stride.
uint32_t rows_needed(const Desc& d);
uint32_t check_desc(const Desc& d);
Extents extents(const Desc& d);
// Decode the descriptor registers (regs[i] = word at byte offset 4*i); in tpq_csim.cpp.
Desc desc_from_regs(const uint32_t* regs);

uint32_t run_conv(const Desc& d, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res);
uint32_t run_maxpool(const Desc& d, const uint8_t* fin, uint8_t* fout);
uint32_t run_gap(const Desc& d, const uint8_t* prm, const uint8_t* fin, uint8_t* fout);

}  // namespace tpq

// The HLS top function: one layer per start (tpq_layer_top.cpp).
void tpq_layer(const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res, uint32_t mode,
               uint32_t batch, uint32_t in_h, uint32_t in_w, uint32_t in_c, uint32_t out_h, uint32_t out_w,
               uint32_t out_c, uint32_t kernel, uint32_t stride, uint32_t pad, uint32_t trits,
               uint32_t in_type, uint32_t out_type, uint32_t res_type, uint32_t has_res, int32_t res_mult,
               uint32_t shift, int32_t lo, int32_t hi, uint32_t wgt_bytes, uint32_t* status);
