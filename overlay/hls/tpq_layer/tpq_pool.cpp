// Max-pool and global-average-pool modes, so the host never touches a feature map.
// Both use the conv mode's P pixels x G channels per cycle.
#include "tpq_layer.hpp"

namespace tpq {

static int16_t pool_ibuf[IBUF_ELEMS];
static int32_t gap_sum[MAX_C];
static int32_t gap_mult[MAX_C], gap_bias[MAX_C];

uint32_t run_maxpool(const Desc& d, const uint8_t* fin, uint8_t* fout) {
  const uint32_t eb = elem_bytes(d.in_type), kk = d.kernel * d.kernel;
  const int32_t stride = static_cast<int32_t>(d.stride), pad = static_cast<int32_t>(d.pad);
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_c;
  const uint64_t img_out = static_cast<uint64_t>(d.out_h) * d.out_w * d.out_c;
  const uint32_t npix = d.out_h * d.out_w, tiles = (npix + P - 1) / P, cvecs = (d.in_c + G - 1) / G;
  RowBuffer rb{pool_ibuf, rows_needed(d), d.in_w, d.in_c, d.in_type, 0};
  int32_t best[P][G];
#pragma HLS ARRAY_PARTITION variable=best type=complete dim=0
  for (uint32_t n = 0; n < d.batch; ++n) {
    rb.next = 0;
    for (uint32_t tile = 0; tile < tiles; ++tile) {
      const uint32_t pix0 = tile * P, np = npix - pix0 < static_cast<uint32_t>(P) ? npix - pix0 : P;
      const int32_t last_y = static_cast<int32_t>((pix0 + np - 1) / d.out_w);
      rb.fetch_until(fin + n * img_in * eb, last_y * stride - pad + static_cast<int32_t>(d.kernel) - 1, d.in_h);
      for (uint32_t cv = 0; cv < cvecs; ++cv) {
        for (uint32_t p = 0; p < np; ++p)
          for (int l = 0; l < G; ++l) best[p][l] = INT32_MIN;
        for (uint32_t kpos = 0; kpos < kk; ++kpos) {
#pragma HLS PIPELINE II=1
          TPQ_COUNT(compute, 1);
          const int32_t di = static_cast<int32_t>(kpos / d.kernel) - pad;
          const int32_t dj = static_cast<int32_t>(kpos % d.kernel) - pad;
          for (uint32_t p = 0; p < np; ++p) {
            const int32_t y = static_cast<int32_t>((pix0 + p) / d.out_w) * stride + di;
            const int32_t x = static_cast<int32_t>((pix0 + p) % d.out_w) * stride + dj;
            if (!rb.inside(y, x, d.in_h)) continue;  // padded positions never win
            for (int l = 0; l < G; ++l) {
              const uint32_t c = cv * G + l;
              if (c < d.in_c && rb.at(y, x, c) > best[p][l]) best[p][l] = rb.at(y, x, c);
            }
          }
        }
        for (uint32_t p = 0; p < np; ++p)
          for (int l = 0; l < G && cv * G + l < d.in_c; ++l)
            fm_store(fout, n * img_out + static_cast<uint64_t>(pix0 + p) * d.out_c + cv * G + l, d.out_type,
                     best[p][l]);
      }
      TPQ_COUNT(out_beats, beats(static_cast<uint64_t>(np) * d.out_c * eb));
    }
  }
  return OK;
}

uint32_t run_gap(const Desc& d, const uint8_t* prm, const uint8_t* fin, uint8_t* fout) {
  const uint32_t ieb = elem_bytes(d.in_type), oeb = elem_bytes(d.out_type);
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_c;
  const uint32_t xtiles = (d.in_w + P - 1) / P, cvecs = (d.in_c + G - 1) / G;
  for (uint32_t c = 0; c < d.in_c; ++c) {
#pragma HLS PIPELINE II=1
    gap_mult[c] = le32(prm + 8 * c);
    gap_bias[c] = le32(prm + 8 * c + 4);
  }
  TPQ_COUNT(wgt_beats, beats(8ull * d.in_c));
  RowBuffer rb{pool_ibuf, rows_needed(d), d.in_w, d.in_c, d.in_type, 0};
  for (uint32_t n = 0; n < d.batch; ++n) {
    rb.next = 0;
    for (uint32_t c = 0; c < d.in_c; ++c) gap_sum[c] = 0;
    for (uint32_t y = 0; y < d.in_h; ++y) {
      rb.fetch_until(fin + n * img_in * ieb, static_cast<int32_t>(y), d.in_h);
      for (uint32_t xt = 0; xt < xtiles; ++xt) {
        for (uint32_t cv = 0; cv < cvecs; ++cv) {
#pragma HLS PIPELINE II=1
          TPQ_COUNT(compute, 1);  // P pixels x G channels into G running sums
          for (uint32_t x = xt * P; x < (xt + 1) * P && x < d.in_w; ++x)
            for (uint32_t c = cv * G; c < (cv + 1) * G && c < d.in_c; ++c)
              gap_sum[c] += rb.at(static_cast<int32_t>(y), static_cast<int32_t>(x), c);
        }
      }
    }
    for (uint32_t cb = 0; cb < (d.in_c + P - 1) / P; ++cb) {
#pragma HLS PIPELINE II=1
      TPQ_COUNT(compute, 1);  // P channels requantized per cycle
      for (uint32_t c = cb * P; c < (cb + 1) * P && c < d.in_c; ++c)
        fm_store(fout, static_cast<uint64_t>(n) * d.out_c + c, d.out_type,
                 requant(gap_sum[c], gap_mult[c], gap_bias[c], 0, d));
    }
    TPQ_COUNT(out_beats, beats(static_cast<uint64_t>(d.out_c) * oeb));
  }
  return OK;
}

}  // namespace tpq
