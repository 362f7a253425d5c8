// Max-pool and global-average-pool modes, so the host never touches a feature map.
// Both read the line buffer P pixels x G channels per iteration, like the conv mode.
#include "tpq_layer.hpp"

namespace tpq {

uint32_t run_maxpool(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C],
                     const uint8_t* fin, uint8_t* fout) {
  const uint32_t k = d.kernel, kk = k * k, cvecs = groups(d.in_c), npix = d.out_h * d.out_w;
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_pitch;  // 8-bit elements
  const int32_t stride = static_cast<int32_t>(d.stride), top = static_cast<int32_t>(d.pad_top),
                left = static_cast<int32_t>(d.pad_left);
  Tiles tl;
  for (uint32_t n = 0; n < d.batch; ++n) {
    Rows next_row{0, 0};
    tl.start(g, npix);
    for (; tl.pix0 < npix; tl.advance(g, d.out_w)) {
      fetch_rows(lbuf, d, g, fin, n * img_in, next_row, tl.oy[tl.np - 1] * stride - top + static_cast<int32_t>(k) - 1);
      // (channel vector, tap) flattened; best[p][l] is a register, reset on the first tap.
      int32_t best[TPQ_P][TPQ_G];
#pragma HLS ARRAY_PARTITION variable=best type=complete dim=0
      const uint32_t trips = cvecs * kk;
      uint32_t cv = 0, kpos = 0, di = 0, dj = 0;
      TPQ_ENTER(L_POOL, trips);
      for (uint32_t it = 0; it < trips; ++it) {
#pragma HLS PIPELINE II=1
        TPQ_TICK(L_POOL);
        for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
          const int32_t y = tl.oy[p] * stride - top + static_cast<int32_t>(di);
          const int32_t x = tl.ox[p] * stride - left + static_cast<int32_t>(dj);
          for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
            const uint32_t c = (cv << LOG_G) + l;
            // Padded positions never win: they read as the smallest value, like an absent one.
            const int32_t v =
                c < d.in_c && inside(d, y, x) ? lb_at(lbuf, d, slot_add(tl.rs[p], di, g.ring), x, c) : INT32_MIN;
            const int32_t cur = kpos == 0 ? INT32_MIN : best[p][l];
            best[p][l] = v > cur ? v : cur;
            // padding channels (in_c .. pitch) never had a value: INT32_MIN stores as 0
            if (kpos == kk - 1 && c < d.out_pitch) obuf[p][c] = static_cast<uint8_t>(best[p][l] & 0xFF);
          }
        }
        if (++kpos == kk) {
          kpos = di = dj = 0;
          ++cv;
        } else if (++dj == k) {
          dj = 0;
          ++di;
        }
      }
      const uint64_t row = d.out_pitch;  // out_type == in_type: 8-bit
      store_rows(fout, (static_cast<uint64_t>(n) * npix + tl.pix0) * row, row, tl.np, d.out_pitch, obuf);
    }
  }
  return OK;
}

uint32_t run_gap(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                 const uint8_t* params, const uint8_t* fin, uint8_t* fout) {
  static int32_t gap_sum[(2 * TPQ_MAX_C + TPQ_G - 1) / TPQ_G][TPQ_G];
#pragma HLS ARRAY_PARTITION variable=gap_sum type=complete dim=2
  const uint32_t oeb = elem_bytes(d.out_type), cvecs = groups(d.in_c);
  const uint32_t xtiles = (d.in_w + P - 1) / P;  // a constant divisor: a multiply, at setup
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_pitch;
  burst_read(L_P_LOAD, params, 0, 8ull * d.in_c, [&](uint64_t k, uint8_t b) { prm[k] = b; });
  TPQ_ENTER(L_ACC_CLEAR, cvecs);
  for (uint32_t cv = 0; cv < cvecs; ++cv) {  // afterwards each requant leaves its sum zeroed
#pragma HLS PIPELINE II=1
    TPQ_TICK(L_ACC_CLEAR);
    for (int l = 0; l < G; ++l) gap_sum[cv][l] = 0;
  }
  for (uint32_t n = 0; n < d.batch; ++n) {
    Rows next{0, 0};
    for (uint32_t y = 0; y < d.in_h; ++y) {
      fetch_rows(lbuf, d, g, fin, n * img_in, next, static_cast<int32_t>(y));
      // (x tile, channel vector) flattened, channel vector fastest. gap_sum[cv] is
      // read-modify-written every cvecs iterations; when that distance is 1 (C <= G) the
      // 2-stage RMW forwards the last sum, as the conv accumulators do.
      const uint32_t trips = xtiles * cvecs;
      uint32_t cv = 0, x0 = 0;
      TPQ_ENTER(L_GAP_SUM, trips);
      for (uint32_t it = 0; it < trips; ++it) {
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=gap_sum type=inter false
        TPQ_TICK(L_GAP_SUM);
        for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
          const uint32_t c = (cv << LOG_G) + l;
          int32_t s = 0;
          for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
            const uint32_t x = x0 + p;
            s += x < d.in_w && c < d.in_c ? lb_at(lbuf, d, 0, static_cast<int32_t>(x), c) : 0;  // ring of 1
          }
          gap_sum[cv][l] += s;
        }
        if (++cv == cvecs) {
          cv = 0;
          x0 += P;
        }
      }
    }
    TPQ_ENTER(L_GAP_REQUANT, d.out_pitch);
    for (uint32_t c = 0; c < d.out_pitch; ++c) {  // the padding channels are written as zero
#pragma HLS PIPELINE II=1
      TPQ_TICK(L_GAP_REQUANT);
      const bool real = c < d.in_c;
      const uint32_t ca = real ? c : 0;
      int32_t& sum = gap_sum[ca >> LOG_G][ca & (G - 1)];
      const int32_t v = real ? requant(sum, le32(prm + 8 * ca), le32(prm + 8 * ca + 4), 0, d) : 0;
      if (real) sum = 0;
      obuf[0][c * oeb] = static_cast<uint8_t>(v & 0xFF);
      if (oeb == 2) obuf[0][c * oeb + 1] = static_cast<uint8_t>((v >> 8) & 0xFF);
    }
    const uint64_t row = static_cast<uint64_t>(d.out_pitch) * oeb;
    store_rows(fout, n * row, row, 1, static_cast<uint32_t>(row), obuf);
  }
  return OK;
}

}  // namespace tpq
