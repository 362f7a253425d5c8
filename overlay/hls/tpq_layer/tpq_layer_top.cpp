// The HLS top function and descriptor checks. Each INTERFACE pragma pins its s_axilite offset to
// the value in regmap.json (tests/overlay/test_regmap.py proves they agree).
#include "tpq_layer.hpp"

namespace tpq {

#ifndef __SYNTHESIS__
thread_local Counters g_count;
#endif

const char* const LOOP_NAMES[N_LOOPS] = {
    "setup",    "w_head",  "w_load", "w_check", "p_load", "acc_clear",   "row_load",
    "mac",      "res_load", "requant", "store",  "pool",    "gap_sum", "gap_requant", "dw",
};

// Line-buffer rows: every input row two consecutive P-pixel tiles' windows touch (conv fetches
// the next tile's rows while the current one computes), at most the whole map, and at least the
// kernel (so a window row's slot is one compare-subtract from its top row's). gap reads one row
// at a time.
uint32_t ring_rows(const Desc& d) {
  if (d.mode == MODE_GAP) return 1;
  // 2P raster-order pixels span at most this many output rows; dwconv works on one pixel at a
  // time and fetches no rows ahead, so its window's k rows are all it holds.
  uint32_t span = d.mode == MODE_DWCONV ? 1 : (d.out_w - 1 + 2 * P - 1) / d.out_w + 1;  // in setup
  if (span > d.out_h) span = d.out_h;
  uint32_t rows = (span - 1) * d.stride + d.kernel;
  if (rows > d.in_h) rows = d.in_h > d.kernel ? d.in_h : d.kernel;
  return rows;
}

// out == (in + before + after - k) / stride + 1, checked with multiplications only.
static bool out_dim_ok(uint32_t in, uint32_t before, uint32_t after, uint32_t out, const Desc& d) {
  const uint64_t span = static_cast<uint64_t>(in) + before + after;
  if (span < d.kernel) return false;
  const uint64_t room = span - d.kernel;
  return static_cast<uint64_t>(out - 1) * d.stride <= room && room < static_cast<uint64_t>(out) * d.stride;
}

uint32_t check_desc(const Desc& d) {
  if (d.mode > MODE_DWCONV || d.batch < 1 || d.batch > MAX_BATCH) return BAD_DESCRIPTOR;
  const uint32_t dims[] = {d.in_h, d.in_w, d.out_h, d.out_w};
  for (uint32_t v : dims)
    if (v < 1 || v > MAX_DIM) return BAD_DESCRIPTOR;
  if (d.in_c < 1 || d.out_c < 1) return BAD_DESCRIPTOR;
  // A pixel's output row (obuf) holds MAX_VEC bytes; conv splits its filters into tiles of at most
  // MAX_C (load_tile), so only the map's channel count is bounded here.
  if (d.in_c > static_cast<uint32_t>(MAX_VEC) || d.out_c > static_cast<uint32_t>(MAX_VEC)) return TOO_LARGE;
  if (d.in_type > ELEM_I16 || d.out_type > ELEM_I16 || d.res_type > ELEM_I16) return BAD_DESCRIPTOR;
  // On chip, inputs and residuals are 9-bit; only a layer's output (the logits) may be 16-bit.
  if (d.in_type == ELEM_I16 || (d.mode == MODE_CONV && d.has_res && d.res_type == ELEM_I16)) return BAD_DESCRIPTOR;
  if (d.mode == MODE_GAP) {
    if (d.out_c != d.in_c || d.out_h != 1 || d.out_w != 1) return BAD_DESCRIPTOR;
  } else {
    if (d.kernel < 1 || d.stride < 1) return BAD_DESCRIPTOR;
    // each side < kernel: a window never lies wholly in the padding
    if (d.pad_top >= d.kernel || d.pad_left >= d.kernel || d.pad_bottom >= d.kernel || d.pad_right >= d.kernel)
      return BAD_DESCRIPTOR;
    if (d.kernel > static_cast<uint32_t>(MAX_K)) return TOO_LARGE;
    if (!out_dim_ok(d.in_h, d.pad_top, d.pad_bottom, d.out_h, d) ||
        !out_dim_ok(d.in_w, d.pad_left, d.pad_right, d.out_w, d))
      return BAD_DESCRIPTOR;
  }
  if (d.mode == MODE_MAXPOOL) {
    if (d.out_c != d.in_c || d.out_type != d.in_type) return BAD_DESCRIPTOR;
  } else {
    // gap and dwconv hold a whole pixel's outputs in obuf; a conv tile's are at most 2 MAX_C bytes
    if (d.mode != MODE_CONV && d.out_c * elem_bytes(d.out_type) > static_cast<uint32_t>(MAX_VEC)) return TOO_LARGE;
    if (d.shift > 48 || d.lo > d.hi || d.lo < elem_lo(d.out_type) || d.hi > elem_hi(d.out_type))
      return BAD_DESCRIPTOR;
  }
  if (d.mode == MODE_CONV || d.mode == MODE_DWCONV) {
    if (d.trits < 1 || d.trits > static_cast<uint32_t>(MAX_T) || d.has_res > 1) return BAD_DESCRIPTOR;
  }
  if (d.mode == MODE_DWCONV && (d.out_c != d.in_c || d.has_res)) return BAD_DESCRIPTOR;  // no fused residual
  // a pitch holds the channels and at most the rest of their last G-word
  if (d.in_pitch < d.in_c || d.in_pitch > groups(d.in_c) << LOG_G) return BAD_DESCRIPTOR;
  if (d.out_pitch < d.out_c || d.out_pitch > groups(d.out_c) << LOG_G) return BAD_DESCRIPTOR;
  if (d.mode != MODE_CONV && d.out_pitch * elem_bytes(d.out_type) > static_cast<uint32_t>(MAX_VEC)) return TOO_LARGE;
  if (d.mode == MODE_MAXPOOL && d.out_pitch != d.in_pitch) return BAD_DESCRIPTOR;
  const uint64_t rows = ring_rows(d);
  if (rows * d.in_w * d.in_pitch > static_cast<uint64_t>(IBUF_ELEMS)) return TOO_LARGE;
  return OK;
}

Geometry geometry(const Desc& d) {
  Geometry g{};
  g.ring = ring_rows(d);
  const uint32_t w = d.mode == MODE_GAP ? 1 : d.out_w;
  g.step_y = P / w;  // one divider gives both, beside ring_rows' division
  g.step_x = P % w;
  // then the slot constants: modulos by the ring (with ring_rows' and P / w, the only run-time
  // divisions of the kernel, all here)
  g.slot_step = g.step_y * d.stride % g.ring;
  g.slot_step1 = (g.step_y + 1) * d.stride % g.ring;
  g.stride_slot = d.stride % g.ring;
  g.top_slot = (g.ring - d.pad_top % g.ring) % g.ring;
  int32_t y = 0, x = 0;
  uint32_t s = g.top_slot;
  for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
    g.oy0[p] = y;
    g.ox0[p] = x;
    g.rs0[p] = s;
    if (++x == static_cast<int32_t>(w)) {
      x = 0;
      ++y;
      s = slot_add(s, g.stride_slot, g.ring);
    }
  }
  return g;
}

void fetch_rows(int16_t* lbuf, const Desc& d, const Geometry& g, const uint8_t* fin, uint64_t image, Rows& rows,
                int32_t last) {
  if (last >= static_cast<int32_t>(d.in_h)) last = static_cast<int32_t>(d.in_h) - 1;
  const uint64_t row_bytes = static_cast<uint64_t>(d.in_w) * d.in_pitch;  // inputs are 8-bit
  for (; rows.next <= last; ++rows.next) {
    int16_t* slot = lbuf + rows.slot * row_bytes;
    burst_read(L_ROW_LOAD, fin, image + static_cast<uint64_t>(rows.next) * row_bytes, row_bytes,
               [&](uint64_t k, uint8_t b) { slot[k] = static_cast<int16_t>(elem8(b, d.in_type)); });
    rows.slot = slot_add(rows.slot, 1, g.ring);
  }
}

Extents extents(const Desc& d) {
  uint64_t in_px = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_pitch * d.batch;
  uint64_t out_px = static_cast<uint64_t>(d.out_h) * d.out_w * d.out_pitch * d.batch;
  Extents e{0, in_px * elem_bytes(d.in_type), out_px * elem_bytes(d.out_type), 0};
  if (d.mode == MODE_CONV || d.mode == MODE_DWCONV) {
    e.wgt = static_cast<uint64_t>(d.wgt_bytes) + 8ull * d.out_c;  // stream, then (mult, bias) pairs
    if (d.has_res) e.res = out_px * elem_bytes(d.res_type);
  } else if (d.mode == MODE_GAP) {
    e.wgt = 8ull * d.out_c;  // gap has no stream: its params sit at wgt_addr
  }
  return e;
}

}  // namespace tpq

void tpq_layer(const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res, uint32_t mode,
               uint32_t batch, uint32_t in_h, uint32_t in_w, uint32_t in_c, uint32_t out_h, uint32_t out_w,
               uint32_t out_c, uint32_t kernel, uint32_t stride, uint32_t pad_top, uint32_t pad_left,
               uint32_t pad_bottom, uint32_t pad_right, uint32_t trits,
               uint32_t in_type, uint32_t out_type, uint32_t res_type, uint32_t has_res, int32_t res_mult,
               uint32_t shift, int32_t lo, int32_t hi, uint32_t wgt_bytes, uint32_t in_pitch, uint32_t out_pitch,
               uint32_t* status) {
#pragma HLS INTERFACE mode=m_axi port=wgt bundle=gmem_w offset=slave max_read_burst_length=64 depth=1024
#pragma HLS INTERFACE mode=m_axi port=fin bundle=gmem_i offset=slave max_read_burst_length=64 depth=1024
#pragma HLS INTERFACE mode=m_axi port=fout bundle=gmem_o offset=slave max_write_burst_length=64 depth=1024
#pragma HLS INTERFACE mode=m_axi port=res bundle=gmem_r offset=slave max_read_burst_length=64 depth=1024
#pragma HLS INTERFACE mode=s_axilite port=return bundle=control
#pragma HLS INTERFACE mode=s_axilite port=status bundle=control offset=0x20
#pragma HLS INTERFACE mode=s_axilite port=wgt bundle=control offset=0x30
#pragma HLS INTERFACE mode=s_axilite port=fin bundle=control offset=0x40
#pragma HLS INTERFACE mode=s_axilite port=fout bundle=control offset=0x50
#pragma HLS INTERFACE mode=s_axilite port=res bundle=control offset=0x60
#pragma HLS INTERFACE mode=s_axilite port=mode bundle=control offset=0x70
#pragma HLS INTERFACE mode=s_axilite port=batch bundle=control offset=0x78
#pragma HLS INTERFACE mode=s_axilite port=in_h bundle=control offset=0x80
#pragma HLS INTERFACE mode=s_axilite port=in_w bundle=control offset=0x88
#pragma HLS INTERFACE mode=s_axilite port=in_c bundle=control offset=0x90
#pragma HLS INTERFACE mode=s_axilite port=out_h bundle=control offset=0x98
#pragma HLS INTERFACE mode=s_axilite port=out_w bundle=control offset=0xA0
#pragma HLS INTERFACE mode=s_axilite port=out_c bundle=control offset=0xA8
#pragma HLS INTERFACE mode=s_axilite port=kernel bundle=control offset=0xB0
#pragma HLS INTERFACE mode=s_axilite port=stride bundle=control offset=0xB8
#pragma HLS INTERFACE mode=s_axilite port=pad_top bundle=control offset=0xC0
#pragma HLS INTERFACE mode=s_axilite port=trits bundle=control offset=0xC8
#pragma HLS INTERFACE mode=s_axilite port=in_type bundle=control offset=0xD0
#pragma HLS INTERFACE mode=s_axilite port=out_type bundle=control offset=0xD8
#pragma HLS INTERFACE mode=s_axilite port=res_type bundle=control offset=0xE0
#pragma HLS INTERFACE mode=s_axilite port=has_res bundle=control offset=0xE8
#pragma HLS INTERFACE mode=s_axilite port=res_mult bundle=control offset=0xF0
#pragma HLS INTERFACE mode=s_axilite port=shift bundle=control offset=0xF8
#pragma HLS INTERFACE mode=s_axilite port=lo bundle=control offset=0x100
#pragma HLS INTERFACE mode=s_axilite port=hi bundle=control offset=0x108
#pragma HLS INTERFACE mode=s_axilite port=wgt_bytes bundle=control offset=0x110
#pragma HLS INTERFACE mode=s_axilite port=pad_left bundle=control offset=0x118
#pragma HLS INTERFACE mode=s_axilite port=pad_bottom bundle=control offset=0x120
#pragma HLS INTERFACE mode=s_axilite port=pad_right bundle=control offset=0x128
#pragma HLS INTERFACE mode=s_axilite port=in_pitch bundle=control offset=0x130
#pragma HLS INTERFACE mode=s_axilite port=out_pitch bundle=control offset=0x138
  const tpq::Desc d{mode,    batch,    in_h,       in_w,      in_c,    out_h,    out_w,    out_c,
                    kernel,  stride,   pad_top,    pad_left,  pad_bottom, pad_right, trits, in_type,
                    out_type, res_type, has_res,   res_mult,  shift,   lo,       hi,       wgt_bytes,
                    in_pitch, out_pitch};
  // The line buffer: lanes read G consecutive channels of one pixel, so it is banked by
  // channel (cyclic G); the P PEs' pixel banking is the rule in docs/overlay.md "Line buffer".
  static int16_t lbuf[TPQ_IBUF_ELEMS];
#pragma HLS ARRAY_PARTITION variable=lbuf type=cyclic factor=TPQ_G
  static uint8_t obuf[TPQ_P][TPQ_MAX_C * 2];
#pragma HLS ARRAY_PARTITION variable=obuf type=complete dim=1
  static uint8_t prm[TPQ_MAX_C * 16];
#pragma HLS ARRAY_PARTITION variable=prm type=cyclic factor=8
  static uint8_t wbuf[TPQ_WBUF_BYTES];
#pragma HLS ARRAY_PARTITION variable=wbuf type=cyclic factor=TPQ_WBUF_PORTS
  TPQ_ENTER(tpq::L_SETUP, 1);
  TPQ_TICK(tpq::L_SETUP);
  uint32_t st = tpq::check_desc(d);
  if (st == tpq::OK) {
    const tpq::Geometry g = tpq::geometry(d);
    if (mode == tpq::MODE_CONV) {
      st = tpq::run_conv(d, g, lbuf, obuf, prm, wbuf, wgt, fin, fout, res);
    } else if (mode == tpq::MODE_DWCONV) {
      st = tpq::run_dwconv(d, g, lbuf, obuf, prm, wbuf, wgt, fin, fout);
    } else if (mode == tpq::MODE_MAXPOOL) {
      st = tpq::run_maxpool(d, g, lbuf, obuf, fin, fout);
    } else {
      st = tpq::run_gap(d, g, lbuf, obuf, prm, wgt, fin, fout);
    }
  }
  *status = st;
}
