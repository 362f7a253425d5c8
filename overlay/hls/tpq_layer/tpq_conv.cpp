// Conv mode (also linear, as a 1x1 conv on a 1x1 map): compacted group-major weights, a P x G
// PE array, Horner over trit planes, per-channel requant with fused residual.
//
// For each pixel tile, the kernel walks the groups that any filter of the output-channel tile
// keeps. Per lane word v of group q it reads the P x G input vector once and reuses it for every
// filter that keeps q (T cycles each), so the input buffer needs only 1/R of the P*G-element
// bandwidth, and pruned (filter, group) pairs never appear in the loop at all.
#include "tpq_layer.hpp"

namespace tpq {

constexpr int R = (P * G + IBUF_READ - 1) / IBUF_READ;  // cycles to read one P x G input vector

static uint8_t wbuf[WBUF_BYTES];  // one output-channel tile of the stream
static int32_t acc_mem[MAX_C][P];  // the tile's accumulators (one bank of the ping-pong pair)
static int32_t mult_buf[MAX_C], bias_buf[MAX_C];
static int16_t conv_ibuf[IBUF_ELEMS];

static uint32_t pad_bytes(uint32_t n) {
  const uint32_t unit = LANE_BYTES < 2 ? 2 : LANE_BYTES;
  return (n + unit - 1) / unit * unit;
}

// Check the tile at wgt + wpos against the descriptor and find its size; nothing is trusted.
static uint32_t scan_tile(const Desc& d, const uint8_t* wgt, uint64_t wpos, uint32_t o0, uint32_t& bytes,
                          uint32_t& nf) {
  const uint32_t nq = groups(d.in_c);
  uint64_t pos = wpos;
  if (pos + 4 > d.wgt_bytes) return BAD_STREAM;
  nf = le16(wgt + pos);
  const uint32_t ng = le16(wgt + pos + 2);
  if (nf == 0 || o0 + nf > d.out_c || ng > nq) return BAD_STREAM;
  pos += pad_bytes(4);
  int32_t prev_q = -1;
  for (uint32_t i = 0; i < ng; ++i) {
    if (pos + 4 > d.wgt_bytes) return BAD_STREAM;
    const uint32_t q = le16(wgt + pos), nk = le16(wgt + pos + 2);
    if (static_cast<int32_t>(q) <= prev_q || q >= nq || nk == 0 || nk > nf) return BAD_STREAM;
    if (pos + 4 + 2 * nk > d.wgt_bytes) return BAD_STREAM;
    int32_t prev_o = -1;
    for (uint32_t j = 0; j < nk; ++j) {
      const int32_t o = le16(wgt + pos + 4 + 2 * j);
      if (o <= prev_o || o >= static_cast<int32_t>(nf)) return BAD_STREAM;
      prev_o = o;
    }
    pos += pad_bytes(4 + 2 * nk) + static_cast<uint64_t>(group_words(d.in_c, d.kernel, q)) * nk * d.trits * LANE_BYTES;
    if (pos > d.wgt_bytes) return BAD_STREAM;
    prev_q = static_cast<int32_t>(q);
  }
  if (pos - wpos > static_cast<uint64_t>(WBUF_BYTES)) return TOO_LARGE;
  bytes = static_cast<uint32_t>(pos - wpos);
  return OK;
}

static uint32_t load_tile(const Desc& d, const uint8_t* wgt, uint64_t& wpos, uint32_t o0, uint32_t& nf) {
  uint32_t bytes = 0;
  const uint32_t st = scan_tile(d, wgt, wpos, o0, bytes, nf);
  if (st != OK) return st;
  for (uint32_t b = 0; b < bytes; ++b) {
#pragma HLS PIPELINE II=1
    wbuf[b] = wgt[wpos + b];
  }
  wpos += bytes;
  TPQ_COUNT(wgt_beats, beats(bytes));
  const uint8_t* prm = wgt + d.wgt_bytes + 8ull * o0;  // (mult, bias) pairs after the stream
  for (uint32_t o = 0; o < nf; ++o) {
#pragma HLS PIPELINE II=1
    mult_buf[o] = le32(prm + 8 * o);
    bias_buf[o] = le32(prm + 8 * o + 4);
  }
  TPQ_COUNT(wgt_beats, beats(8ull * nf));
  return OK;
}

// The P x G input vector of lane word v of group q: lane l is element v*G + l of the group's
// (i, j, c) window; zero for conv padding and for lanes past the group's gc*k*k elements.
static void gather(const Desc& d, const RowBuffer& rb, const int32_t* oy, const int32_t* ox, uint32_t np,
                   uint32_t q, uint32_t v, int32_t x[P][G]) {
#pragma HLS ARRAY_PARTITION variable=x type=complete dim=0
  const uint32_t gc = group_channels(d.in_c, q), k = d.kernel, kk = k * k;
  const int32_t stride = static_cast<int32_t>(d.stride), pad = static_cast<int32_t>(d.pad);
  for (int l = 0; l < G; ++l) {
    const uint32_t e = v * G + l;
    const uint32_t kpos = e / gc, c = q * G + e % gc;
    const int32_t di = static_cast<int32_t>(kpos / k) - pad, dj = static_cast<int32_t>(kpos % k) - pad;
    for (uint32_t p = 0; p < static_cast<uint32_t>(P); ++p) {
      const int32_t y = oy[p] * stride + di, xx = ox[p] * stride + dj;
      x[p][l] = (p < np && e < gc * kk && rb.inside(y, xx, d.in_h)) ? rb.at(y, xx, c) : 0;
    }
  }
}

// One group's lane word for one filter: T cycles of G-lane add-only trees, Horner across planes.
static uint32_t mac(const uint8_t*& word, uint32_t trits, const int32_t x[P][G], uint32_t valid, int32_t* acc) {
  int32_t part[P] = {0};
#pragma HLS ARRAY_PARTITION variable=part type=complete
  for (uint32_t t = 0; t < trits; ++t, word += LANE_BYTES) {
#pragma HLS PIPELINE II=1
    for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
      int32_t sum = 0;
      for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
        const int code = trit_code(word, l);
        if (code == 2 || (code != 0 && static_cast<uint32_t>(l) >= valid)) return BAD_STREAM;
        sum += code == 1 ? x[p][l] : code == 3 ? -x[p][l] : 0;
      }
      part[p] = part[p] + part[p] + part[p] + sum;  // x3 = (part << 1) + part: no multiplier
    }
  }
  for (int p = 0; p < P; ++p) acc[p] += part[p];
  return OK;
}

uint32_t run_conv(const Desc& d, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res) {
  const uint32_t ieb = elem_bytes(d.in_type), oeb = elem_bytes(d.out_type), reb = elem_bytes(d.res_type);
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_c;
  const uint64_t img_out = static_cast<uint64_t>(d.out_h) * d.out_w * d.out_c;
  const uint32_t npix = d.out_h * d.out_w, tiles = (npix + P - 1) / P, kk = d.kernel * d.kernel;
#pragma HLS ARRAY_PARTITION variable=acc_mem type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=conv_ibuf type=cyclic factor=TPQ_IBUF_READ
#pragma HLS ARRAY_PARTITION variable=wbuf type=cyclic factor=TPQ_WBUF_PORTS
  RowBuffer rb{conv_ibuf, rows_needed(d), d.in_w, d.in_c, d.in_type, 0};
  int32_t oy[P], ox[P], x[P][G];
  uint64_t wpos = 0;
  for (uint32_t o0 = 0, nf = 0; o0 < d.out_c; o0 += nf) {
    const uint32_t st = load_tile(d, wgt, wpos, o0, nf);
    if (st != OK) return st;
    const bool whole = o0 == 0 && nf == d.out_c;  // the tile's output pixels are contiguous
    for (uint32_t n = 0; n < d.batch; ++n) {
      rb.next = 0;
      TPQ_COUNT(compute, nf);  // the pass's last requant sweep, which nothing overlaps
      for (uint32_t tile = 0; tile < tiles; ++tile) {
        const uint32_t pix0 = tile * P, np = npix - pix0 < static_cast<uint32_t>(P) ? npix - pix0 : P;
        for (uint32_t p = 0; p < static_cast<uint32_t>(P); ++p) {
          const uint32_t pix = p < np ? pix0 + p : pix0;  // idle PEs shadow the first pixel
          oy[p] = static_cast<int32_t>(pix / d.out_w);
          ox[p] = static_cast<int32_t>(pix % d.out_w);
        }
        rb.fetch_until(fin + n * img_in * ieb, oy[np - 1] * static_cast<int32_t>(d.stride) -
                                                   static_cast<int32_t>(d.pad) + static_cast<int32_t>(d.kernel) - 1,
                       d.in_h);
        for (uint32_t o = 0; o < nf; ++o)
          for (int p = 0; p < P; ++p) acc_mem[o][p] = 0;
        uint64_t mac_cycles = 0;
        const uint8_t* ptr = wbuf + pad_bytes(4);
        const uint32_t ng = le16(wbuf + 2);
        for (uint32_t i = 0; i < ng; ++i) {
          const uint32_t q = le16(ptr), nk = le16(ptr + 2);
          const uint8_t* keepers = ptr + 4;
          const uint32_t gc = group_channels(d.in_c, q), nw = group_words(d.in_c, d.kernel, q);
          const uint8_t* word = ptr + pad_bytes(4 + 2 * nk);
          for (uint32_t v = 0; v < nw; ++v) {
            // The next vector is read while this one serves its nk filters: max(R, nk*T) cycles.
            const uint64_t busy = static_cast<uint64_t>(nk) * d.trits;
            mac_cycles += busy > static_cast<uint64_t>(R) ? busy : static_cast<uint64_t>(R);
            gather(d, rb, oy, ox, np, q, v, x);
            const uint32_t left = gc * kk - v * G, valid = left < static_cast<uint32_t>(G) ? left : G;
            for (uint32_t j = 0; j < nk; ++j) {
              if (mac(word, d.trits, x, valid, acc_mem[le16(keepers + 2 * j)]) != OK) return BAD_STREAM;
            }
          }
          ptr = word;
        }
        // Requant sweep, one filter's P results per cycle, from one bank of the ping-pong
        // accumulators while the next pixel tile accumulates into the other: a tile costs
        // max(MAC, sweep), and the last sweep of the pass is added once below.
        TPQ_COUNT(compute, mac_cycles > nf ? mac_cycles : nf);
        for (uint32_t o = 0; o < nf; ++o) {
#pragma HLS PIPELINE II=1
          for (uint32_t p = 0; p < np; ++p) {
            const uint64_t idx = n * img_out + static_cast<uint64_t>(pix0 + p) * d.out_c + o0 + o;
            const int32_t r = d.has_res ? fm_load(res, idx, d.res_type) : 0;
            fm_store(fout, idx, d.out_type, requant(acc_mem[o][p], mult_buf[o], bias_buf[o], r, d));
          }
        }
        if (whole) {
          TPQ_COUNT(out_beats, beats(static_cast<uint64_t>(np) * d.out_c * oeb));
          if (d.has_res) TPQ_COUNT(res_beats, beats(static_cast<uint64_t>(np) * d.out_c * reb));
        } else {
          TPQ_COUNT(out_beats, np * beats(static_cast<uint64_t>(nf) * oeb));
          if (d.has_res) TPQ_COUNT(res_beats, np * beats(static_cast<uint64_t>(nf) * reb));
        }
      }
    }
  }
  return OK;
}

}  // namespace tpq
