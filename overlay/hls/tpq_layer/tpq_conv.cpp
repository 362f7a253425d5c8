// Conv mode (also linear, as a 1x1 conv on a 1x1 map): compacted group-major weights, a P x G
// PE array, Horner over trit planes, per-channel requant with fused residual.
//
// Per output-channel tile: burst the tile into the weight buffer, validate it in one pass
// (W_CHECK), then for each image and P-pixel tile run one flattened MAC pipeline over the tile's
// lane words, i.e. over (kept group, tap, keeper filter, trit); pruned (filter, group) pairs have
// no lane word and so no iteration. Header words of the tile are bubbles of the same loop.
#include "tpq_layer.hpp"
#include "tpq_walk.hpp"

namespace tpq {

// Load and validate the tile at stream offset wpos; nothing in it is trusted before this returns OK.
static uint32_t load_tile(const Desc& d, const uint8_t* wgt, uint64_t wpos, uint32_t o0, uint8_t* wbuf,
                          uint8_t* prm, uint32_t& nf, uint32_t& words) {
  if (wpos + TILE_HEAD > d.wgt_bytes) return BAD_STREAM;
  uint8_t head[8];  // TILE_HEAD bytes
#pragma HLS ARRAY_PARTITION variable=head type=complete
  burst_read(L_W_HEAD, wgt, wpos, TILE_HEAD, [&](uint64_t k, uint8_t b) { head[k] = b; });
  nf = le16(head);
  const uint32_t ng = le16(head + 2), bytes = static_cast<uint32_t>(le32(head + 4));
  if (nf == 0 || o0 + nf > d.out_c || ng > groups(d.in_c)) return BAD_STREAM;
  // a tile's filters fill the accumulator banks; the last one's padding columns the output tile
  const uint32_t cols = o0 + nf == d.out_c ? d.out_pitch - o0 : nf;
  if (nf > static_cast<uint32_t>(MAX_C) || cols * elem_bytes(d.out_type) > static_cast<uint32_t>(MAX_VEC))
    return TOO_LARGE;
  if (bytes < pad_lane(TILE_HEAD) || bytes % LANE_BYTES || wpos + bytes > d.wgt_bytes) return BAD_STREAM;
  if (bytes > static_cast<uint32_t>(WBUF_BYTES)) return TOO_LARGE;
  burst_read(L_W_LOAD, wgt, wpos, bytes, [&](uint64_t k, uint8_t b) { wbuf[k] = b; });
  words = bytes / LANE_BYTES;

  const uint32_t head_words = pad_lane(TILE_HEAD) / LANE_BYTES;
  Walk s;
  s.start(wbuf, d, bytes);
  int32_t prev_o = -1;
  TPQ_ENTER(L_W_CHECK, words - head_words);
  for (uint32_t w = head_words; w < words; ++w) {
#pragma HLS PIPELINE II=1
    TPQ_TICK(L_W_CHECK);
    const uint32_t pos = w * LANE_BYTES;
    const WordOp op = s.step(pos);
    bool ok = true;
    if (!op.body) {
      if (pos == s.hdr_pos) prev_o = -1;
      for (int k = 0; k < LANE_BYTES / 2; ++k) {  // the filter indices this header word holds
#pragma HLS UNROLL
        const uint32_t b = pos + 2 * k;
        const uint32_t jj = (b - s.hdr_pos - 4) >> 1;
        if (b >= s.hdr_pos + 4 && jj < s.nk) {
          const int32_t o = le16(wbuf + b);
          ok = ok && o > prev_o && o < static_cast<int32_t>(s.nf);
          prev_o = o;
        }
      }
    } else {
      ok = word_ok(wbuf + pos, op.valid);
    }
    s.bad = s.bad || !ok;
  }
  if (!s.finished()) return BAD_STREAM;
  burst_read(L_P_LOAD, wgt, static_cast<uint64_t>(d.wgt_bytes) + 8ull * o0, 8ull * nf,
             [&](uint64_t k, uint8_t b) { prm[k] = b; });
  return OK;
}

// The next (group, tap) position of a tile whose inputs the gather fetches: its group q, lane
// word v = tap (di, dj), its channels gc, and whether it exists. Advanced by carries: the next
// tap of the same group, or tap 0 of the next kept group, whose header index the caller reads
// from the weight buffer.
struct Target {
  uint32_t q, v, di, dj, gc;
  bool live;
};

// The MAC over one pixel tile, II = 1, into one bank, with the P PEs' inputs in two registers in
// series: while the lane words of one (group, tap) position run on x, the gather fills xn for
// the next position, one PE's word per iteration, so each lane bank of the line buffer serves
// one read a cycle (its other port is the row fetch's write) and the P-way choice is a write
// enable; when the next position starts, xn moves into x (no mux: each register has one source). A position whose inputs are not all gathered yet waits (gather-only
// iterations): positions of fewer than P lane words cost P. acc[o][p] is read-modify-written on
// the last plane of each (filter, word); the next write of the same filter comes at least one
// iteration later (nk = T = 1), so the RMW is a 2-stage read/add-write with a forwarding
// register for distance 1 (HLS: DEPENDENCE inter false on acc plus that bypass). Horner's
// part[p] is a register: one shift-add per cycle.
static void mac_tile(const Desc& d, const Geometry& g, const int16_t* lbuf, const uint8_t* wbuf, uint32_t words,
                     const Tiles& tl, int32_t (*acc)[P]) {
  const int32_t stride = static_cast<int32_t>(d.stride), top = static_cast<int32_t>(d.pad_top),
                left = static_cast<int32_t>(d.pad_left);
  const uint32_t head_words = pad_lane(TILE_HEAD) / LANE_BYTES, kk = d.kernel * d.kernel;
  int16_t x[TPQ_P][TPQ_G];  // 9-bit input codes the lanes read
#pragma HLS ARRAY_PARTITION variable=x type=complete dim=0
  int16_t xn[TPQ_P][TPQ_G];  // the next position's, as the gather fills them
#pragma HLS ARRAY_PARTITION variable=xn type=complete dim=0
  int32_t part[TPQ_P] = {};
#pragma HLS ARRAY_PARTITION variable=part type=complete dim=1
  Walk s;
  s.start(wbuf, d, words * LANE_BYTES);
  // the first position: word 0 of the first kept group, whose header follows the tile's
  Target tg{0, 0, 0, 0, 0, words > head_words};
  if (tg.live) {
    tg.q = le16(wbuf + head_words * LANE_BYTES);
    tg.gc = group_channels(d.in_c, tg.q);
  }
  uint32_t cq = ~0u, cv = ~0u, gp = 0;  // the position x holds; PE gp is gathered next
  uint32_t w = head_words;
  TPQ_ENTER(L_MAC, words - head_words);
  while (w < words) {
#pragma HLS PIPELINE II=1
#pragma HLS DEPENDENCE variable=acc type=inter false
    TPQ_TICK(L_MAC);
    const bool starts = s.hdr_left == 0 && s.body_left > 0 && (s.q != cq || s.v != cv);  // next word
    if (!starts || gp == static_cast<uint32_t>(P)) {
      if (starts) {  // its inputs are gathered: move them in and aim the gather at the position after
        for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
          for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
            x[p][l] = xn[p][l];
          }
        }
        cq = tg.q;
        cv = tg.v;
        gp = 0;
        if (tg.v + 1 < kk) {  // the next tap of the same group
          ++tg.v;
          if (++tg.dj == d.kernel) {
            tg.dj = 0;
            ++tg.di;
          }
        } else {  // word 0 of the next kept group: its header follows this group's body
          tg.live = s.seen < s.ng;
          tg.q = tg.live ? le16(wbuf + (w + s.body_left) * LANE_BYTES) : 0;
          tg.v = tg.di = tg.dj = 0;
          tg.gc = group_channels(d.in_c, tg.q);
        }
      }
      const uint32_t pos = w * LANE_BYTES;
      const WordOp op = s.step(pos);
      ++w;
      if (op.body) {
        const uint8_t* word = wbuf + pos;
        for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
          int32_t sum = 0;
          for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
            const int code = trit_code(word, l);
            sum += code == 1 ? x[p][l] : code == 3 ? -x[p][l] : 0;
          }
          part[p] = op.first ? sum : part[p] + part[p] + part[p] + sum;  // x3: shift + add
          if (op.last) acc[op.o][p] += part[p];
        }
      }
    }
    if (tg.live && gp < static_cast<uint32_t>(P)) {  // gather PE gp's word of the target position
      const int32_t oy = tl.oy[gp], ox = tl.ox[gp];
      const uint32_t rs = tl.rs[gp];
      for (int l = 0; l < G; ++l) {
#pragma HLS UNROLL
        const uint32_t c = (tg.q << LOG_G) + l;  // lane l: channel l of the group, bank l
        const int32_t y = oy * stride - top + static_cast<int32_t>(tg.di);
        const int32_t xx = ox * stride - left + static_cast<int32_t>(tg.dj);
        const bool use = static_cast<uint32_t>(l) < tg.gc && inside(d, y, xx);
        xn[gp][l] = static_cast<int16_t>(use ? lb_at(lbuf, d, slot_add(rs, tg.di, g.ring), xx, c) : 0);
      }
      ++gp;
    }
  }
}

// Drain one finished pixel tile from its bank: residual burst, requant (leaving the bank zeroed
// for its next tile), output burst. tile_px: the tile's first pixel counted over the batch. The
// last output-channel tile also writes the pixel's padding channels (out_c .. out_pitch) as
// zero, so a tile holding every filter is one contiguous burst.
static void drain_tile(const Desc& d, uint8_t (*obuf)[2 * MAX_C], uint8_t (*rbuf)[MAX_C], const uint8_t* prm,
                       int32_t (*acc)[P], uint64_t tile_px, uint32_t np, uint32_t o0, uint32_t nf,
                       const uint8_t* res, uint8_t* fout) {
  const uint32_t oeb = elem_bytes(d.out_type), reb = elem_bytes(d.res_type);
  const uint32_t nr = o0 + nf == d.out_c ? d.out_pitch - o0 : nf;  // columns written
  if (d.has_res) {
    tile_bursts((tile_px * d.out_pitch + o0) * reb, static_cast<uint64_t>(d.out_pitch) * reb, np, nr * reb,
                [&](uint64_t start, uint64_t len, uint32_t p0) {
                  uint32_t p = p0, b = 0;
                  burst_read(L_RES_LOAD, res, start, len, [&](uint64_t, uint8_t v) {
                    if (b < nf) rbuf[p][b] = v;  // the padding channels' bytes are not kept
                    if (++b == nr) {
                      b = 0;
                      ++p;
                    }
                  });
                });
  }
  TPQ_ENTER(L_REQUANT, nr);
  for (uint32_t o = 0; o < nr; ++o) {
#pragma HLS PIPELINE II=1
    TPQ_TICK(L_REQUANT);
    const bool real = o < nf;
    const uint32_t oa = real ? o : 0;  // padding columns touch no accumulator
    const int32_t mult = le32(prm + 8 * oa), bias = le32(prm + 8 * oa + 4);
    for (int p = 0; p < P; ++p) {
#pragma HLS UNROLL
      const int32_t r = d.has_res ? elem8(rbuf[p][oa], d.res_type) : 0;
      const int32_t v = real ? requant(acc[oa][p], mult, bias, r, d) : 0;
      if (real) acc[oa][p] = 0;
      obuf[p][o * oeb] = static_cast<uint8_t>(v & 0xFF);
      if (oeb == 2) obuf[p][o * oeb + 1] = static_cast<uint8_t>((v >> 8) & 0xFF);
    }
  }
  store_rows(fout, (tile_px * d.out_pitch + o0) * oeb, static_cast<uint64_t>(d.out_pitch) * oeb, np, nr * oeb,
             obuf);
}

// One step of the pixel-tile pipeline: tile i's MAC into one bank, tile i - 1's drain from the
// other, tile i + 1's new rows into the line buffer. The stages share no array they write, so
// they form a DATAFLOW region; a disabled stage (words 0, np 0, last -1) does nothing. The
// C-simulation runs them in turn and charges the step its slowest stage.
static void tile_step(const Desc& d, const Geometry& g, int16_t* lbuf, const uint8_t* wbuf, uint32_t words,
                      const Tiles& tl,
                      int32_t (*fill)[P], uint8_t (*obuf)[2 * MAX_C], uint8_t (*rbuf)[MAX_C], const uint8_t* prm,
                      int32_t (*drain)[P], uint32_t np, uint64_t tile_px, uint32_t o0, uint32_t nf,
                      const uint8_t* res, uint8_t* fout, const uint8_t* fin, uint64_t image, Rows& next_row,
                      int32_t last) {
#pragma HLS DATAFLOW
  TPQ_MARK(m0);
  if (words > 0) mac_tile(d, g, lbuf, wbuf, words, tl, fill);
  TPQ_MARK(m1);
  if (np > 0) drain_tile(d, obuf, rbuf, prm, drain, tile_px, np, o0, nf, res, fout);
  TPQ_MARK(m2);
  if (last >= 0) fetch_rows(lbuf, d, g, fin, image, next_row, last);
  TPQ_MARK(m3);
  TPQ_OVERLAP(m1 - m0, m2 - m1, m3 - m2);
}

uint32_t run_conv(const Desc& d, const Geometry& g, int16_t* lbuf, uint8_t (*obuf)[2 * MAX_C], uint8_t* prm,
                  uint8_t* wbuf, const uint8_t* wgt, const uint8_t* fin, uint8_t* fout, const uint8_t* res) {
  static int32_t acc[2][TPQ_MAX_C][TPQ_P];
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=3
  static uint8_t rbuf[TPQ_P][TPQ_MAX_C];
#pragma HLS ARRAY_PARTITION variable=rbuf type=complete dim=1

  const uint32_t k = d.kernel;
  const uint64_t img_in = static_cast<uint64_t>(d.in_h) * d.in_w * d.in_pitch;  // inputs are 8-bit
  const uint32_t npix = d.out_h * d.out_w;
  const int32_t stride = static_cast<int32_t>(d.stride), top = static_cast<int32_t>(d.pad_top);

  uint64_t wpos = 0;
  Tiles tl;
  for (uint32_t o0 = 0, nf = 0; o0 < d.out_c; o0 += nf) {
    uint32_t words = 0;
    const uint32_t st = load_tile(d, wgt, wpos, o0, wbuf, prm, nf, words);
    if (st != OK) return st;
    wpos += static_cast<uint64_t>(words) * LANE_BYTES;
    TPQ_ENTER(L_ACC_CLEAR, nf);
    for (uint32_t o = 0; o < nf; ++o) {  // afterwards each drain leaves its bank zeroed
#pragma HLS PIPELINE II=1
      TPQ_TICK(L_ACC_CLEAR);
      for (int p = 0; p < P; ++p) acc[0][o][p] = acc[1][o][p] = 0;
    }
    for (uint32_t n = 0; n < d.batch; ++n) {
      // Two accumulator banks: pixel tile i accumulates into bank i & 1 while tile i - 1 drains
      // from the other and the rows tile i + 1 adds are fetched (the ring holds two tiles' rows):
      // three stages of a DATAFLOW region (mac_tile || drain_tile || fetch_rows), so a step costs
      // the slowest. Only tile 0's rows are fetched before any MAC can start.
      uint32_t bank = 0, prev_np = 0;
      uint64_t prev_px = 0;
      bool pending = false;
      Rows next_row{0, 0};
      const int32_t reach = static_cast<int32_t>(k) - 1 - top;  // last window row - stride * oy
      tl.start(g, npix);
      fetch_rows(lbuf, d, g, fin, n * img_in, next_row, tl.oy[tl.np - 1] * stride + reach);
      for (;;) {
        const bool more = tl.pix0 < npix;
        Tiles nx = tl;
        if (more) nx.advance(g, d.out_w);
        tile_step(d, g, lbuf, wbuf, more ? words : 0, tl, acc[bank], obuf, rbuf, prm,
                  acc[bank ^ 1], pending ? prev_np : 0, prev_px, o0, nf, res, fout, fin, n * img_in, next_row,
                  more && nx.pix0 < npix ? nx.oy[nx.np - 1] * stride + reach : -1);
        if (!more) break;
        pending = true;
        prev_px = static_cast<uint64_t>(n) * npix + tl.pix0;
        prev_np = tl.np;
        bank ^= 1;
        tl = nx;
      }
    }
  }
  return OK;
}

}  // namespace tpq
