// Depthwise conv mode: one filter per channel, lanes carry channels (docs/overlay.md "Depthwise").
//
// One output pixel at a time. The line-buffer word a PE reads in conv mode (one tap x G
// consecutive channels, lane l in bank l) feeds one depthwise unit of G lanes, each with its own
// running sum. Per G-channel block the unit runs the block's T x k x k weight words, plane
// MSB first and taps in raster order inside a plane, so Horner needs one register per lane:
// the first tap of a plane makes dsum = 3*dsum + v (x3 as two adds), the others dsum + v. A
// finished block's sums are copied to dhold and requantized one channel per iteration by
// requant unit 0 (a G-to-1 mux reads dhold) while the next block accumulates: one pipelined
// loop per pixel (L_DW) of T*k*k + sum over later blocks of max(T*k*k, channels of the block
// before) + channels of the last block iterations. No group is skipped: a pruned channel's
// weights are zero and cost the same.
//
// Weight stream: for each block b < ceil(C/G), for each plane t = T-1 .. 0, for each tap (i, j):
// one lane word, lane l = trit of channel b*G + l (zero past C). No headers; the whole stream is
// burst on chip and checked (W_CHECK) before any pixel is computed. (mult, bias) x C follow it.
#include "tpq_layer.hpp"

namespace tpq {

uint32_t run_dwconv(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                    uint8_t* wbuf, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout) {
  const uint32_t k = d.kernel, kk = k * k, c_all = d.in_c, nb = groups(c_all), t_top = d.trits - 1;
  const uint32_t block_words = d.trits * kk, words = nb * block_words, bytes = words * LANE_BYTES;
  if (bytes > d.wgt_bytes) return BAD_STREAM;
  if (bytes > static_cast<uint32_t>(WBUF_BYTES)) return TOO_LARGE;
  burst_read(L_W_LOAD, wgt, 0, bytes, [&](uint64_t i, uint8_t b) { wbuf[i] = b; });

  // Validate: no invalid code, no weight on a lane past the last channel.
  bool ok = true;
  uint32_t b = 0, wi = 0, valid = c_all < static_cast<uint32_t>(G) ? c_all : G;
  TPQ_ENTER(L_W_CHECK, words);
  for (uint32_t w = 0; w < words; ++w) {
#pragma HLS PIPELINE II=1
    TPQ_TICK(L_W_CHECK);
    ok = ok && word_ok(wbuf + w * LANE_BYTES, valid);
    if (++wi == block_words) {
      wi = 0;
      ++b;
      const uint32_t left = c_all - (b << LOG_G);
      valid = left < static_cast<uint32_t>(G) ? left : G;
    }
  }
  if (!ok) return BAD_STREAM;
  burst_read(L_P_LOAD, wgt, d.wgt_bytes, 8ull * c_all, [&](uint64_t i, uint8_t v) { prm[i] = v; });

  int32_t dsum[TPQ_G];  // the depthwise unit's running sums (registers)
#pragma HLS ARRAY_PARTITION variable=dsum type=complete dim=1
  int32_t dhold[TPQ_G];  // a finished block's sums, requantized while the next block runs
#pragma HLS ARRAY_PARTITION variable=dhold type=complete dim=1
  const uint32_t oeb = elem_bytes(d.out_type), npix = d.out_h * d.out_w;
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_pitch;  // inputs are 8-bit
  const uint64_t row_out = static_cast<uint64_t>(d.out_pitch) * oeb;
  const int32_t stride = static_cast<int32_t>(d.stride);
  for (uint32_t n = 0; n < d.batch; ++n) {
    Rows next_row{0, 0};
    int32_t y0 = -static_cast<int32_t>(d.pad_top);  // window origin of pixel (oy, ox): carried
    uint32_t s0 = g.top_slot;                        // and the slot of its top row
    uint32_t ox = 0;
    int32_t x0 = -static_cast<int32_t>(d.pad_left);
    for (uint32_t pix = 0; pix < npix; ++pix) {
      fetch_rows(lbuf, d, g, fin, n * img_in, next_row, y0 + static_cast<int32_t>(k) - 1);
      // Two stages in one loop, carried counters only: the MAC of block mb's (plane, tap) words
      // into dsum, and the requant of the block before it, one channel per iteration, from
      // dhold. A finished block waits in dsum (full) until the requant has emptied dhold.
      bool full = false, busy = true;
      uint32_t mb = 0, t = t_top, di = 0, dj = 0, w = 0, rq_left = 0, rq_c = 0;
      TPQ_ENTER(L_DW, 1u);
      while (busy) {
#pragma HLS PIPELINE II=1
        TPQ_TICK(L_DW);
        if (rq_left > 0) {  // channels past c_all are the pixel's padding: zero
          const bool real = rq_c < c_all;
          const uint32_t ca = real ? rq_c : 0;
          const int32_t v = real ? requant(dhold[rq_c & (G - 1)], le32(prm + 8 * ca), le32(prm + 8 * ca + 4), 0, d) : 0;
          obuf[0][rq_c * oeb] = static_cast<uint8_t>(v & 0xFF);
          if (oeb == 2) obuf[0][rq_c * oeb + 1] = static_cast<uint8_t>((v >> 8) & 0xFF);
          ++rq_c;
          --rq_left;
        }
        if (!full && mb < nb) {
          const uint8_t* word = wbuf + w * LANE_BYTES;
          const int32_t y = y0 + static_cast<int32_t>(di), x = x0 + static_cast<int32_t>(dj);
          const bool first_tap = di == 0 && dj == 0;
          for (int ln = 0; ln < G; ++ln) {
#pragma HLS UNROLL
            const uint32_t c = (mb << LOG_G) + ln;
            const int32_t xv = c < c_all && inside(d, y, x) ? lb_at(lbuf, d, slot_add(s0, di, g.ring), x, c) : 0;
            const int code = trit_code(word, ln);
            const int32_t v = code == 1 ? xv : code == 3 ? -xv : 0;
            const int32_t base = !first_tap ? dsum[ln] : t == t_top ? 0 : dsum[ln] + dsum[ln] + dsum[ln];
            dsum[ln] = base + v;
          }
          ++w;
          if (++dj == k) {
            dj = 0;
            if (++di == k) {
              di = 0;
              full = t == 0;  // after plane 0 the block's sums are final
              t = t == 0 ? t_top : t - 1;
            }
          }
        }
        if (full && rq_left == 0) {  // hand the finished block to the requant stage
          for (int ln = 0; ln < G; ++ln) {
#pragma HLS UNROLL
            dhold[ln] = dsum[ln];
          }
          const uint32_t left = d.out_pitch - (mb << LOG_G);  // the last block writes the padding too
          rq_c = mb << LOG_G;
          rq_left = left < static_cast<uint32_t>(G) ? left : G;
          full = false;
          ++mb;
        }
        busy = mb < nb || full || rq_left > 0;
      }
      store_rows(fout, (static_cast<uint64_t>(n) * npix + pix) * row_out, row_out, 1, static_cast<uint32_t>(row_out),
                 obuf);
      x0 += stride;
      if (++ox == d.out_w) {
        ox = 0;
        x0 = -static_cast<int32_t>(d.pad_left);
        y0 += stride;
        s0 = slot_add(s0, g.stride_slot, g.ring);
      }
    }
  }
  return OK;
}

}  // namespace tpq
