// tpq_layer: one layer of a ternary, PE-wise pruned CNN per start (docs/overlay.md).
//
// A P x G PE array: the P PEs compute P consecutive output pixels (raster order) of the same
// output filter; each PE adds G lanes per cycle, and the current lane word of weights is
// broadcast to all PEs. The weight stream lists, per input-channel group, only the filters that
// keep it, so a pruned group costs no cycle on any PE. Multi-trit weights run plane by plane,
// MSB first, with part = 3*part + sum (x3 as shift + add): the MAC path has no multiplier.
//
// Every cycle the cycle model charges is one iteration of a loop below with II = 1, whose body
// holds only constant-bound unrolled loops; TPQ_TICK in each such body and TPQ_ENTER before it
// make the C-simulation count exactly those iterations and the loop's pipeline depth once per
// entry (docs/overlay.md "Loop table"). host/ternpynq/overlay/cycles.py predicts the same counts
// from the loop table on its own.
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
constexpr int MAX_K = TPQ_MAX_K;
constexpr int MAX_C = TPQ_MAX_C;    // filters of one output-channel tile (accumulator depth)
constexpr int MAX_VEC = 2 * MAX_C;  // bytes of one pixel's output row (obuf): channels of a map
constexpr int PORT_BYTES = TPQ_PORT_BYTES;
constexpr int MAX_T = 5;
constexpr uint32_t MAX_DIM = 4096;
constexpr uint32_t MAX_BATCH = 65535;
constexpr uint32_t TILE_HEAD = 8;  // u16 n_filters, u16 n_groups, u32 tile_bytes
static_assert(TILE_HEAD == 8, "load_tile reads the header into an 8-byte array");

constexpr int clog2(int v) { return v <= 1 ? 0 : 1 + clog2((v + 1) / 2); }
constexpr int LOG_G = clog2(G), LOG_PORT = clog2(PORT_BYTES);
static_assert(G >= 8 && (1 << LOG_G) == G, "g is a power of two >= 8: a u16 header field fits a lane word");
static_assert((1 << LOG_PORT) == PORT_BYTES, "the AXI port width is a power of two");
static_assert(G <= 256, "lane-map channel indices are 8-bit");
static_assert(TPQ_MAX_C % TPQ_G == 0, "a tile's filters and its padding channels fit MAX_C");

enum Mode : uint32_t { MODE_CONV = 0, MODE_MAXPOOL = 1, MODE_GAP = 2, MODE_DWCONV = 3 };
enum Elem : uint32_t { ELEM_U8 = 0, ELEM_I8 = 1, ELEM_I16 = 2 };
enum Status : uint32_t {
  OK = 0,
  BAD_DESCRIPTOR = 1,
  TOO_LARGE = 2,
  BAD_STREAM = 3,
  BAD_ADDRESS = 4,
};

// The loop table (docs/overlay.md): every loop the model charges, and its pipeline depth in
// cycles, added once per entry. Depths are stated here until Vitis HLS reports them; a DDR read
// loop's depth is the m_axi `latency` HLS schedules for (64) plus address and store stages.
enum Loop : int {
  L_SETUP,        // descriptor check and per-layer constants (two 32-bit divisions), once per start
  L_W_HEAD,       // burst: the 8-byte tile header
  L_W_LOAD,       // burst: the whole tile into the weight buffer
  L_W_CHECK,      // one lane word of the tile per iteration: headers, filter lists, trit codes
  L_P_LOAD,       // burst: (mult, bias) pairs
  L_ACC_CLEAR,    // one filter's P accumulators (or one G-channel GAP sum) per iteration
  L_ROW_LOAD,     // burst: one input row into the line buffer
  L_MAC,          // one lane word per iteration: (kept group, tap, keeper filter, trit) flattened
  L_RES_LOAD,     // burst: the pixel tile's residual bytes
  L_REQUANT,      // one filter's P outputs per iteration
  L_STORE,        // burst: the pixel tile's output bytes
  L_POOL,         // max pool: one (G-channel vector, tap) per iteration
  L_GAP_SUM,      // gap: P pixels x G channels per iteration
  L_GAP_REQUANT,  // gap: one channel per iteration
  L_DW,           // dwconv: per pixel, per G-channel block, (trit plane, tap) then one lane's requant
  N_LOOPS
};
constexpr int READ_DEPTH = 64 + 2;
constexpr uint32_t DEPTH[N_LOOPS] = {
    80,              // setup: two sequential 32-bit dividers (~35 cycles each) and the checks
    READ_DEPTH,      // w_head
    READ_DEPTH,      // w_load
    3,               // w_check: read, decode, compare
    READ_DEPTH,      // p_load
    1,               // acc_clear
    READ_DEPTH,      // row_load
    4 + LOG_G + 2,   // mac: weight + line-buffer read, select/negate, log2(G) adder levels, Horner, acc
    READ_DEPTH,      // res_load
    8,               // requant: 32x32 and 32x16 products in cascaded DSPs, round, clamp
    4,               // store: writes are posted; the response is awaited once, at the layer's end
    4,               // pool
    3 + clog2(P) + 1,  // gap_sum: read, P-input adder tree, accumulate
    8,               // gap_requant
    10,              // dw: weight + line-buffer read, select/negate, accumulate; lane mux, requant, obuf
};
extern const char* const LOOP_NAMES[N_LOOPS];

inline uint64_t max3(uint64_t a, uint64_t b, uint64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

// Iterations and entries of each loop in the last run (C-simulation only), and the cycles that
// overlapped stages hide: a DATAFLOW step costs its slowest stage, so the other stages' cycles
// are counted (per loop) but subtracted from the total.
struct Counters {
  uint64_t iters[N_LOOPS];
  uint64_t entries[N_LOOPS];
  uint64_t hidden;
  uint64_t loops() const {
    uint64_t t = 0;
    for (int i = 0; i < N_LOOPS; ++i) t += iters[i] + entries[i] * DEPTH[i];
    return t;
  }
  uint64_t total() const { return loops() - hidden; }
};

#ifndef __SYNTHESIS__
extern thread_local Counters g_count;
#define TPQ_TICK(loop) (++tpq::g_count.iters[loop])
#define TPQ_ENTER(loop, trips) ((trips) > 0 ? (void)++tpq::g_count.entries[loop] : (void)0)
#define TPQ_MARK(name) const uint64_t name = tpq::g_count.loops()
#define TPQ_OVERLAP(a, b, c) (tpq::g_count.hidden += (a) + (b) + (c) - tpq::max3((a), (b), (c)))
#else
#define TPQ_TICK(loop) ((void)0)
#define TPQ_ENTER(loop, trips) ((void)0)
#define TPQ_MARK(name) ((void)0)
#define TPQ_OVERLAP(a, b, c) ((void)0)
#endif

// The layer descriptor, one field per AXI-Lite register (regmap.json).
struct Desc {
  uint32_t mode, batch;
  uint32_t in_h, in_w, in_c, out_h, out_w, out_c;
  uint32_t kernel, stride, pad_top, pad_left, pad_bottom, pad_right, trits;  // zero padding per side
  uint32_t in_type, out_type, res_type, has_res;
  int32_t res_mult;
  uint32_t shift;
  int32_t lo, hi;
  uint32_t wgt_bytes;
  uint32_t in_pitch, out_pitch;  // elements per pixel in DDR: the channels, up to whole G-words
};

// Bytes each m_axi port touches for a valid descriptor (the csim ABI bounds-checks these).
struct Extents {
  uint64_t wgt, in, out, res;
};

// Per-layer constants computed once per start (L_SETUP): the only divisions of the kernel.
struct Geometry {
  uint32_t ring;      // line-buffer rows (>= kernel): row y lives in slot y mod ring
  uint32_t step_y, step_x;  // P raster pixels = step_y rows + step_x columns of the output
  // Slots are carried, never computed by a modulo in a loop: the slot advance of a tile step
  // (step_y or step_y + 1 output rows), of one output row, and of the padded row -pad_top.
  uint32_t slot_step, slot_step1, stride_slot, top_slot;
  int32_t oy0[TPQ_P];  // coordinates of pixels 0..P-1 (registers)
  int32_t ox0[TPQ_P];
  uint32_t rs0[TPQ_P];  // slot of each one's top window row, oy0 * stride - pad_top
};

// a + b mod ring for a, b < ring (one compare and subtract)
inline uint32_t slot_add(uint32_t a, uint32_t b, uint32_t ring) { return a + b >= ring ? a + b - ring : a + b; }

inline uint32_t elem_bytes(uint32_t t) { return t == ELEM_I16 ? 2 : 1; }
inline int32_t elem_lo(uint32_t t) { return t == ELEM_U8 ? 0 : t == ELEM_I8 ? -128 : -32768; }
inline int32_t elem_hi(uint32_t t) { return t == ELEM_U8 ? 255 : t == ELEM_I8 ? 127 : 32767; }
// AXI beats that cover bytes [start, start + len) of a port whose buffer starts on a beat.
inline uint64_t span_beats(uint64_t start, uint64_t len) {
  return len == 0 ? 0 : ((start + len - 1) >> LOG_PORT) - (start >> LOG_PORT) + 1;
}

// The one accessor for an 8-bit feature-map element (inputs and residuals are never 16-bit).
inline int32_t elem8(uint8_t b, uint32_t t) { return t == ELEM_U8 ? b : static_cast<int8_t>(b); }

// The one accessor for the weight stream's bit order: trit of lane l in a lane word
// (2-bit two's complement code, lane l at bits 2(l%4) of byte l/4). Code 0b10 is invalid.
inline int trit_code(const uint8_t* word, int l) { return (word[l >> 2] >> (2 * (l & 3))) & 3; }
// A lane word the MAC may trust: no invalid code 0b10 and no weight on a lane at or past `valid`
// (padding lanes of a group, or channels past the last of a depthwise block).
inline bool word_ok(const uint8_t* word, uint32_t valid) {
  bool ok = true;
  for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
    const int code = trit_code(word, l);
    ok = ok && code != 2 && (code == 0 || static_cast<uint32_t>(l) < valid);
  }
  return ok;
}
inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline int32_t le32(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                              (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24));
}

// Groups along Cin and lane words per plane of group q: ceil(gc*k*k / G), G a power of two.
inline uint32_t groups(uint32_t cin) { return (cin + G - 1) >> LOG_G; }
inline uint32_t group_channels(uint32_t cin, uint32_t q) {
  return cin - (q << LOG_G) < static_cast<uint32_t>(G) ? cin - (q << LOG_G) : G;
}
inline uint32_t pad_lane(uint32_t n) { return (n + LANE_BYTES - 1) & ~static_cast<uint32_t>(LANE_BYTES - 1); }

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

// A burst loop over bytes [start, start + len) of a port whose buffer starts on a beat: one AXI
// beat per iteration, over the aligned beats that cover the range; byte(a, k) handles byte a of
// the port, byte k of the range. Bytes of the first and last beat outside the range are skipped
// (reads fetch whole beats, writes use the AXI strobes; C-simulation touches only the range).
template <typename Byte>
void burst(Loop label, uint64_t start, uint64_t len, Byte byte) {
  const uint64_t first = start >> LOG_PORT, n = span_beats(start, len), end = start + len;
  TPQ_ENTER(label, n);
  for (uint64_t i = 0; i < n; ++i) {
#pragma HLS PIPELINE II=1
    TPQ_TICK(label);
    const uint64_t base = (first + i) << LOG_PORT;
    for (int b = 0; b < PORT_BYTES; ++b) {
#pragma HLS UNROLL
      const uint64_t a = base + b;
      if (a >= start && a < end) byte(a, a - start);
    }
  }
}

// Burst read: sink(k, byte) receives byte k of the range, in order.
template <typename Sink>
void burst_read(Loop label, const uint8_t* port, uint64_t start, uint64_t len, Sink sink) {
  burst(label, start, len, [&](uint64_t a, uint64_t k) { sink(k, port[a]); });
}

// Burst write (the store loop): byte k of the range comes from source(k), in order.
template <typename Source>
void burst_write(uint8_t* port, uint64_t start, uint64_t len, Source source) {
  burst(L_STORE, start, len, [&](uint64_t a, uint64_t k) { port[a] = source(k); });
}

// The np rows of a pixel tile, row p at DDR byte base + p * pitch, row_len bytes each: one
// burst when the rows are contiguous (a tile holding all of out_c), else one burst per row.
// burst(start, len, p0) moves one burst whose first byte is byte 0 of row p0.
template <typename Burst>
void tile_bursts(uint64_t base, uint64_t pitch, uint32_t np, uint32_t row_len, Burst burst) {
  if (pitch == row_len) {
    burst(base, static_cast<uint64_t>(np) * row_len, 0u);
  } else {
    for (uint32_t p = 0; p < np; ++p) burst(base + p * pitch, row_len, p);
  }
}

// Store the output tile obuf[p][0 .. row_len) of each of np pixels, rows as in tile_bursts.
inline void store_rows(uint8_t* port, uint64_t base, uint64_t pitch, uint32_t np, uint32_t row_len,
                       const uint8_t (*obuf)[2 * MAX_C]) {
  tile_bursts(base, pitch, np, row_len, [&](uint64_t start, uint64_t len, uint32_t p0) {
    uint32_t p = p0, b = 0;  // the byte's place in the tile, carried (no division)
    burst_write(port, start, len, [&](uint64_t) {
      const uint8_t v = obuf[p][b];
      if (++b == row_len) {
        b = 0;
        ++p;
      }
      return v;
    });
  });
}

// Pixel-tile bookkeeping shared by conv and max pool: raster coordinates of the P pixels of the
// current tile, advanced by carries (no division).
struct Tiles {
  int32_t oy[TPQ_P];  // registers
  int32_t ox[TPQ_P];
  uint32_t rs[TPQ_P];  // line-buffer slot of each pixel's top window row
  uint32_t pix0, np, npix;
  void start(const Geometry& g, uint32_t npix_) {
    npix = npix_;
    pix0 = 0;
    np = npix < static_cast<uint32_t>(P) ? npix : P;
    for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
      oy[p] = g.oy0[p];
      ox[p] = g.ox0[p];
      rs[p] = g.rs0[p];
    }
  }
  void advance(const Geometry& g, uint32_t out_w) {
    pix0 += P;
    np = npix - pix0 < static_cast<uint32_t>(P) ? npix - pix0 : P;
    for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
      oy[p] += static_cast<int32_t>(g.step_y);
      ox[p] += static_cast<int32_t>(g.step_x);
      const bool wrap = ox[p] >= static_cast<int32_t>(out_w);
      if (wrap) {
        ox[p] -= static_cast<int32_t>(out_w);
        oy[p] += 1;
      }
      rs[p] = slot_add(rs[p], wrap ? g.slot_step1 : g.slot_step, g.ring);
    }
  }
};

// The line buffer: input rows in a ring of g.ring slots (row y in slot y mod ring), each row
// in_w x in_pitch 9-bit values, NHWC like DDR. Rows arrive in order, one burst each; `Rows` carries
// the next row to fetch and its slot. `image` is the byte offset of the image in the input
// port: beats are counted from the port's base.
struct Rows {
  int32_t next;
  uint32_t slot;
};
void fetch_rows(int16_t* lbuf, const Desc& d, const Geometry& g, const uint8_t* fin, uint64_t image, Rows& rows,
                int32_t last);
inline bool inside(const Desc& d, int32_t y, int32_t x) {
  return y >= 0 && x >= 0 && y < static_cast<int32_t>(d.in_h) && x < static_cast<int32_t>(d.in_w);
}
// Element (slot, x, c) of the line buffer; the slot of window row di is slot_add(rs, di, ring),
// valid because ring >= kernel.
inline int32_t lb_at(const int16_t* lbuf, const Desc& d, uint32_t slot, int32_t x, uint32_t c) {
  return lbuf[(static_cast<uint64_t>(slot) * d.in_w + static_cast<uint32_t>(x)) * d.in_pitch + c];
}

uint32_t ring_rows(const Desc& d);
uint32_t check_desc(const Desc& d);
Geometry geometry(const Desc& d);
Extents extents(const Desc& d);
// Decode the descriptor registers (regs[i] = word at byte offset 4*i); in tpq_csim.cpp.
Desc desc_from_regs(const uint32_t* regs);

// Shared on-chip buffers (declared in the top function): the line buffer, the output tile
// (row p = PE p's bytes in DDR order), the (mult, bias) pairs and the weight buffer.
uint32_t run_conv(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                  uint8_t* wbuf, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res);
uint32_t run_maxpool(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C],
                     const uint8_t* fin, uint8_t* fout);
uint32_t run_gap(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                 const uint8_t* params, const uint8_t* fin, uint8_t* fout);
uint32_t run_dwconv(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                    uint8_t* wbuf, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout);

}  // namespace tpq

// The HLS top function: one layer per start (tpq_layer_top.cpp).
void tpq_layer(const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res, uint32_t mode,
               uint32_t batch, uint32_t in_h, uint32_t in_w, uint32_t in_c, uint32_t out_h, uint32_t out_w,
               uint32_t out_c, uint32_t kernel, uint32_t stride, uint32_t pad_top, uint32_t pad_left,
               uint32_t pad_bottom, uint32_t pad_right, uint32_t trits,
               uint32_t in_type, uint32_t out_type, uint32_t res_type, uint32_t has_res, int32_t res_mult,
               uint32_t shift, int32_t lo, int32_t hi, uint32_t wgt_bytes, uint32_t in_pitch, uint32_t out_pitch,
               uint32_t* status);
