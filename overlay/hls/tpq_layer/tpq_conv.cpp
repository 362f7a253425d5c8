// Conv mode (also linear, as a 1x1 conv on a 1x1 map): compacted weights, P x G PE array,
// Horner over trit planes, per-channel requant with fused residual.
#include "tpq_layer.hpp"

namespace tpq {

static uint8_t wbuf[WBUF_BYTES];  // one output-channel tile of filter records
static uint32_t rec_off[MAX_C];   // where each filter's record starts in wbuf
static int32_t mult_buf[MAX_C], bias_buf[MAX_C];
static int16_t conv_ibuf[IBUF_ELEMS];

// Copy whole filter records [o0, o1) into wbuf: as many as fit. Checks the stream as it goes.
static uint32_t load_tile(const Desc& d, const uint8_t* wgt, uint64_t& wpos, uint32_t o0, uint32_t& o1) {
  const uint32_t nq = groups(d.in_c);
  uint32_t used = 0;
  for (o1 = o0; o1 < d.out_c; ++o1) {
    if (wpos + 2 > d.wgt_bytes) return BAD_STREAM;
    const uint32_t n_kept = le16(wgt + wpos);
    const uint32_t head = header_bytes(n_kept);
    if (n_kept > nq || wpos + head > d.wgt_bytes) return BAD_STREAM;
    uint64_t words = 0;
    int32_t prev = -1;
    for (uint32_t i = 0; i < n_kept; ++i) {
      const int32_t q = le16(wgt + wpos + 2 + 2 * i);
      if (q >= static_cast<int32_t>(nq) || q <= prev) return BAD_STREAM;
      words += group_words(d.in_c, d.kernel, q);
      prev = q;
    }
    const uint64_t rec = head + words * LANE_BYTES * d.trits;
    if (wpos + rec > d.wgt_bytes) return BAD_STREAM;
    if (used + rec > static_cast<uint64_t>(WBUF_BYTES)) {
      if (o1 == o0) return TOO_LARGE;  // one filter alone exceeds the weight buffer
      break;
    }
    for (uint64_t b = 0; b < rec; ++b) {
#pragma HLS PIPELINE II=1
      wbuf[used + b] = wgt[wpos + b];
    }
    rec_off[o1 - o0] = used;
    used += static_cast<uint32_t>(rec);
    wpos += rec;
  }
  TPQ_COUNT(wgt_beats, beats(used));
  const uint8_t* prm = wgt + d.wgt_bytes + 8ull * o0;  // (mult, bias) pairs after the stream
  for (uint32_t o = o0; o < o1; ++o) {
#pragma HLS PIPELINE II=1
    mult_buf[o - o0] = le32(prm + 8 * (o - o0));
    bias_buf[o - o0] = le32(prm + 8 * (o - o0) + 4);
  }
  TPQ_COUNT(wgt_beats, beats(8ull * (o1 - o0)));
  return OK;
}

// One output filter on one tile of np pixels: the inner loop is one lane word per cycle.
static uint32_t filter_tile(const Desc& d, const uint8_t* rec, const RowBuffer& rb, const int32_t* oy,
                            const int32_t* ox, uint32_t np, int32_t* acc) {
#pragma HLS ARRAY_PARTITION variable=acc type=complete
  const uint32_t k = d.kernel, kk = k * k;
  const int32_t stride = static_cast<int32_t>(d.stride), pad = static_cast<int32_t>(d.pad);
  const uint32_t n_kept = le16(rec);
  const uint8_t* word = rec + header_bytes(n_kept);
  for (uint32_t p = 0; p < np; ++p) acc[p] = 0;
  for (uint32_t t = 0; t < d.trits; ++t) {  // plane T-1 first: Horner
    for (uint32_t p = 0; p < np; ++p) acc[p] = acc[p] + acc[p] + acc[p];  // x3 = (acc << 1) + acc
    for (uint32_t i = 0; i < n_kept; ++i) {
      const uint32_t q = le16(rec + 2 + 2 * i);
      const uint32_t gc = group_channels(d.in_c, q), nw = group_words(d.in_c, k, q);
      for (uint32_t v = 0; v < nw; ++v, word += LANE_BYTES) {
#pragma HLS PIPELINE II=1
        TPQ_COUNT(compute, 1);
        for (int l = 0; l < G; ++l) {  // G lanes x P PEs, unrolled: an add-only tree per PE
          const int code = trit_code(word, l);
          if (code == 2) return BAD_STREAM;
          const uint32_t e = v * G + l;
          if (e >= gc * kk) {
            if (code != 0) return BAD_STREAM;  // padding lanes must hold 0
            continue;
          }
          if (code == 0) continue;
          const uint32_t kpos = e / gc, c = q * G + e % gc;
          const int32_t di = static_cast<int32_t>(kpos / k) - pad, dj = static_cast<int32_t>(kpos % k) - pad;
          for (uint32_t p = 0; p < np; ++p) {
            const int32_t y = oy[p] * stride + di, x = ox[p] * stride + dj;
            if (!rb.inside(y, x, d.in_h)) continue;  // zero padding
            const int32_t val = rb.at(y, x, c);
            acc[p] += code == 1 ? val : -val;
          }
        }
      }
    }
  }
  return OK;
}

uint32_t run_conv(const Desc& d, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res) {
  const uint32_t ieb = elem_bytes(d.in_type), oeb = elem_bytes(d.out_type), reb = elem_bytes(d.res_type);
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_c;
  const uint64_t img_out = static_cast<uint64_t>(d.out_h) * d.out_w * d.out_c;
  const uint32_t npix = d.out_h * d.out_w, tiles = (npix + P - 1) / P;
  RowBuffer rb{conv_ibuf, rows_needed(d), d.in_w, d.in_c, d.in_type, 0};
  int32_t oy[P], ox[P], acc[P];
  uint64_t wpos = 0;
  for (uint32_t o0 = 0, o1 = 0; o0 < d.out_c; o0 = o1) {
    const uint32_t st = load_tile(d, wgt, wpos, o0, o1);
    if (st != OK) return st;
    const bool whole = o0 == 0 && o1 == d.out_c;  // the tile's output pixels are contiguous
    for (uint32_t n = 0; n < d.batch; ++n) {
      rb.next = 0;
      for (uint32_t tile = 0; tile < tiles; ++tile) {
        const uint32_t pix0 = tile * P, np = npix - pix0 < static_cast<uint32_t>(P) ? npix - pix0 : P;
        for (uint32_t p = 0; p < np; ++p) {
          oy[p] = (pix0 + p) / d.out_w;
          ox[p] = (pix0 + p) % d.out_w;
        }
        rb.fetch_until(fin + n * img_in * ieb, oy[np - 1] * d.stride - d.pad + d.kernel - 1, d.in_h);
        for (uint32_t o = o0; o < o1; ++o) {
          const uint32_t fst = filter_tile(d, wbuf + rec_off[o - o0], rb, oy, ox, np, acc);
          if (fst != OK) return fst;
          TPQ_COUNT(compute, 1);  // requant and write-back of P results
          for (uint32_t p = 0; p < np; ++p) {
#pragma HLS UNROLL
            const uint64_t idx = n * img_out + static_cast<uint64_t>(pix0 + p) * d.out_c + o;
            const int32_t r = d.has_res ? fm_load(res, idx, d.res_type) : 0;
            fm_store(fout, idx, d.out_type, requant(acc[p], mult_buf[o - o0], bias_buf[o - o0], r, d));
          }
        }
        if (whole) {
          TPQ_COUNT(out_beats, beats(static_cast<uint64_t>(np) * d.out_c * oeb));
          if (d.has_res) TPQ_COUNT(res_beats, beats(static_cast<uint64_t>(np) * d.out_c * reb));
        } else {
          TPQ_COUNT(out_beats, np * beats(static_cast<uint64_t>(o1 - o0) * oeb));
          if (d.has_res) TPQ_COUNT(res_beats, np * beats(static_cast<uint64_t>(o1 - o0) * reb));
        }
      }
    }
  }
  return OK;
}

}  // namespace tpq
